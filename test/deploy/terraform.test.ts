import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, chartValues, hasPath, listFiles, onPath, readText } from './helpers.js';

const tf = (dir: string) =>
  listFiles(`terraform/${dir}`, (p) => p.endsWith('.tf'))
    .map((p) => readText(p))
    .join('\n');
const cluster = tf('cluster');
const helm = tf('helm');

describe('terraform/cluster', () => {
  it('pins Terraform, the AWS provider and the module versions', () => {
    expect(cluster).toMatch(/required_version\s*=\s*">= 1\.5/);
    expect(cluster).toMatch(
      /aws\s*=\s*\{\s*source\s*=\s*"hashicorp\/aws"\s*#[^\n]*\n\s*version\s*=\s*"[^"]+"/,
    );
    const modules = [
      ...cluster.matchAll(/module "([^"]+)" \{\s*source\s*=\s*"([^"]+)"\s*version\s*=\s*"([^"]+)"/g),
    ];
    expect(modules.map((m) => m[2])).toEqual([
      'terraform-aws-modules/vpc/aws',
      'terraform-aws-modules/eks/aws',
      'terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks',
    ]);
    expect(modules.every((m) => /^~> \d+\.\d+$/.test(m[3]!))).toBe(true);
  });

  it('has a CPU node group and a GPU node group (AL2 GPU AMI, tainted nvidia.com/gpu)', () => {
    expect(cluster).toMatch(/eks_managed_node_groups = \{\s*cpu = \{/);
    expect(cluster).toMatch(/\n\s*gpu = \{\s*ami_type\s*=\s*var\.gpu_ami_type/);
    expect(cluster).toMatch(/variable "gpu_ami_type" \{[^}]*default\s*=\s*"AL2_x86_64_GPU"/);
    expect(cluster).toMatch(/variable "gpu_instance_types" \{[^}]*default\s*=\s*\["g4dn\.xlarge"\]/);
    expect(cluster).toMatch(/key\s*=\s*"nvidia\.com\/gpu"\s*value\s*=\s*"true"\s*effect\s*=\s*"NO_SCHEDULE"/);
  });

  it('labels the node pools the way values-eks.yaml selects them', () => {
    const eks = readText('charts/smart-routing/values-eks.yaml');
    for (const pool of ['cpu', 'gpu']) {
      expect(cluster).toContain(`"smart-routing/pool" = "${pool}"`);
      expect(eks).toContain(`smart-routing/pool: ${pool}`);
    }
  });

  it('outputs what terraform/helm reads from its state', () => {
    const used = new Set([...helm.matchAll(/local\.cluster\.([a-z_]+)/g)].map((m) => m[1]!));
    const outputs = new Set([...cluster.matchAll(/output "([a-z_]+)"/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(3);
    expect([...used].filter((o) => !outputs.has(o))).toEqual([]);
  });
});

describe('terraform/helm', () => {
  it('pins the helm and kubernetes providers', () => {
    expect(helm).toMatch(/source\s*=\s*"hashicorp\/helm"\s*version\s*=\s*"~> 2\.\d+"/);
    expect(helm).toMatch(/source\s*=\s*"hashicorp\/kubernetes"\s*version\s*=\s*"~> 2\.\d+"/);
  });

  it('installs the chart that is in this repository with values-eks.yaml', () => {
    expect(helm).toContain('"${path.module}/../../charts/smart-routing"');
    expect(existsSync(join(ROOT, 'terraform/helm', '../../charts/smart-routing/Chart.yaml'))).toBe(true);
    expect(helm).toContain('file("${local.chart_path}/values-eks.yaml")');
    expect(helm).toContain('"${path.module}/../cluster/terraform.tfstate"');
  });

  it('sets only chart values that exist', () => {
    const values = chartValues();
    const names = [...helm.matchAll(/name\s*=\s*"([a-zA-Z.]+)"/g)]
      .map((m) => m[1]!)
      .filter((n) => n.includes('.'));
    expect(names.length).toBeGreaterThan(2);
    expect(names.filter((n) => !hasPath(values, n))).toEqual([]);
    // The structured values block: each key it sets.
    for (const path of [
      'image.registry',
      'image.tag',
      'dispatcher.routingPolicy',
      'dispatcher.randomDispatch',
      'dispatcher.replicas',
      'redis.enabled',
      'redis.url',
      'worker.replicas',
      'worker.labelCapacity',
      'worker.slots',
      'worker.modelServer',
      'worker.triton.gpus',
      'modelRepository.demoModels.enabled',
      'modelRepository.demoModels.count',
    ])
      expect(hasPath(values, path), path).toBe(true);
    expect(hasPath(values, 'worker.tritonGpus')).toBe(false);
  });

  it('creates the efs-sc StorageClass values-eks.yaml asks for', () => {
    expect(helm).toMatch(/kubernetes_storage_class_v1" "efs" \{\s*metadata \{\s*name = "efs-sc"/);
    expect(readText('charts/smart-routing/values-eks.yaml')).toContain('storageClass: efs-sc');
  });
});

describe.skipIf(!onPath('terraform'))('terraform fmt (skipped: no terraform binary on PATH)', () => {
  it('terraform fmt -check -recursive terraform passes', () => {
    // fmt needs no providers, so it runs offline.
    let out = '';
    try {
      out = execFileSync('terraform', ['fmt', '-check', '-recursive', '-list=true', 'terraform'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      const e = error as { stdout?: string };
      expect.fail(`terraform fmt would change:\n${e.stdout ?? String(error)}`);
    }
    expect(out.trim()).toBe('');
  });
});
