import { describe, expect, it } from 'vitest';
import { instanceJson, nodeSummary } from '../../src/cli/instances.js';
import type { ListedEntry } from '../../src/registry/registry.js';

let pid = 100;
const entry = (over: Partial<ListedEntry>): ListedEntry => ({
  id: `id-${pid}`,
  instance: 'default',
  role: 'gateway',
  name: 'default',
  pid: pid++,
  host: 'host-a',
  endpoints: {},
  resources: [],
  startedAt: 1,
  heartbeatAt: 2,
  alive: true,
  ...over,
});

describe('tickcast instances: gateway nodes per host', () => {
  it('counts the live nodes of each instance per host and names its adapters', () => {
    const entries = [
      entry({ name: 'n1', host: 'host-b' }),
      entry({ name: 'n2', host: 'host-a' }),
      entry({ name: 'n3', host: 'host-a' }),
      entry({ name: 'gone', host: 'host-c', alive: false }),
      entry({ role: 'adapter', name: 'sim', host: 'host-c' }),
      entry({ instance: 'solo', name: 'solo' }), // a ZeroMQ gateway: one per instance, no summary
      entry({ instance: 'edge', name: 'e1', host: 'host-z' }),
    ];
    expect(nodeSummary(entries)).toEqual([
      'default: 3 gateway nodes on 2 hosts (host-a: n2, n3; host-b: n1); adapters: sim on host-c',
      'edge: 1 gateway node on 1 host (host-z: e1); no adapter',
    ]);
  });

  it('has nothing to say without nodes', () => {
    expect(nodeSummary([entry({}), entry({ role: 'adapter', name: 'sim' })])).toEqual([]);
    expect(nodeSummary([])).toEqual([]);
  });

  it("JSON names each node and its host", () => {
    expect(instanceJson(entry({ name: 'n1', host: 'host-b', endpoints: { ws: 'ws://10.0.0.2:8765', bus: 'nats://10.0.0.9:4222' } }))).toMatchObject({
      role: 'gateway',
      name: 'n1',
      host: 'host-b',
      endpoints: { ws: 'ws://10.0.0.2:8765', bus: 'nats://10.0.0.9:4222', control: null },
    });
  });
});
