import { describe, expect, it } from 'vitest';
import { convStack } from '../src/index.js';

describe('convStack', () => {
  it('chains Conv + ReLU layers with weights [cout, cin, 3, 3] and the given strides', () => {
    const s = convStack({
      input: 'pixels',
      inputChannels: 3,
      layers: [{ channels: 16 }, { channels: 8, stride: 1 }],
      seed: 5,
    });
    expect(s.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Conv', 'Relu']);
    expect(s.nodes[0]!.input[0]).toBe('pixels');
    // Each conv reads the previous ReLU's output; the stack's output is the last ReLU's.
    expect(s.nodes[2]!.input[0]).toBe(s.nodes[1]!.output[0]);
    expect(s.output).toBe(s.nodes[3]!.output[0]);
    expect(s.channels).toBe(8);
    expect(s.initializers.map((t) => [t.name, t.dims])).toEqual([
      ['conv0.w', [16, 3, 3, 3]],
      ['conv0.b', [16]],
      ['conv1.w', [8, 16, 3, 3]],
      ['conv1.b', [8]],
    ]);
    const strides = s.nodes
      .filter((n) => n.opType === 'Conv')
      .map((n) => n.attribute!.find((a) => a.name === 'strides')!.ints);
    expect(strides).toEqual([
      [2, 2],
      [1, 1],
    ]);
  });
});
