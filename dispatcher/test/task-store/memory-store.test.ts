import { describe, expect, it } from 'vitest';
import { MemoryTaskStore } from '../../src/task-store/memory-store.js';
import { describeTaskStoreContract, newTask } from './contract.js';

describeTaskStoreContract('memory', () => Promise.resolve({ store: new MemoryTaskStore() }));

describe('MemoryTaskStore', () => {
  it('hands out copies: changing a returned record changes nothing stored', async () => {
    const store = new MemoryTaskStore();
    await store.create(newTask('t', 1));
    const got = (await store.get('t')) as { label: string };
    got.label = 'changed';
    expect((await store.get('t'))?.label).toBe('minilm');
    await store.close();
  });
});
