/**
 * CPU time and resident memory of other processes, from Linux's /proc, so the server under test
 * is measured from outside (it runs no measuring code of its own).
 */
import { readFileSync, readdirSync } from 'node:fs';

/** /proc reports CPU times in USER_HZ clock ticks, which is 100 on every Linux ABI. */
const USER_HZ = 100;

/** User + system CPU seconds a process (all its threads) has used, or null if it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}

/** Resident set size in bytes, or null if the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** `pid` and every process descended from it (a gateway run with `--workers N` is a tree). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      let list = children.get(parent);
      if (!list) children.set(parent, (list = []));
      list.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU seconds of a process tree, or null if its root is gone (descendants gone meanwhile count as 0). */
export function treeCpuSeconds(pid: number): number | null {
  const root = cpuSeconds(pid);
  if (root === null) return null;
  return processTree(pid).slice(1).reduce((sum, child) => sum + (cpuSeconds(child) ?? 0), root);
}

/** Resident memory of a process tree, or null if its root is gone. */
export function treeRssBytes(pid: number): number | null {
  const root = rssBytes(pid);
  if (root === null) return null;
  return processTree(pid).slice(1).reduce((sum, child) => sum + (rssBytes(child) ?? 0), root);
}

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
function hostJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!; // idle + iowait
  return { busy: total - idle, total };
}

export interface WindowStats {
  seconds: number;
  /** Server CPU as % of one core over the window. */
  serverCpuPct: number;
  serverCpuSeconds: number;
  serverRssMeanBytes: number;
  serverRssMaxBytes: number;
  /** All load-generator workers together, % of one core. */
  loadCpuPct: number;
  /** Whole machine, % of all cores (includes anything else running on it). */
  hostBusyPct: number;
}

/** Samples one server (its whole process tree) and a group of load workers between start() and stop(). */
export class WindowSampler {
  private startedAt = 0;
  private serverCpu0 = 0;
  private loadCpu0: number[] = [];
  private host0 = { busy: 0, total: 0 };
  private rss: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly serverPid: number,
    private readonly loadPids: readonly number[],
    private readonly rssEveryMs = 200,
  ) {}

  start(): void {
    this.startedAt = performance.now();
    this.serverCpu0 = treeCpuSeconds(this.serverPid) ?? 0;
    this.loadCpu0 = this.loadPids.map((pid) => cpuSeconds(pid) ?? 0);
    this.host0 = hostJiffies();
    this.sampleRss();
    this.timer = setInterval(() => this.sampleRss(), this.rssEveryMs);
  }

  stop(): WindowStats {
    clearInterval(this.timer);
    this.sampleRss();
    const seconds = (performance.now() - this.startedAt) / 1000;
    const serverCpuSeconds = (treeCpuSeconds(this.serverPid) ?? this.serverCpu0) - this.serverCpu0;
    // A worker that died meanwhile counts as idle since the start.
    const loadCpuSeconds = this.loadPids.reduce((sum, pid, i) => sum + (cpuSeconds(pid) ?? this.loadCpu0[i]!) - this.loadCpu0[i]!, 0);
    const host = hostJiffies();
    const hostTotal = host.total - this.host0.total;
    return {
      seconds,
      serverCpuPct: (serverCpuSeconds / seconds) * 100,
      serverCpuSeconds,
      serverRssMeanBytes: this.rss.reduce((a, b) => a + b, 0) / Math.max(1, this.rss.length),
      serverRssMaxBytes: Math.max(0, ...this.rss),
      loadCpuPct: (loadCpuSeconds / seconds) * 100,
      hostBusyPct: hostTotal > 0 ? ((host.busy - this.host0.busy) / hostTotal) * 100 : 0,
    };
  }

  private sampleRss(): void {
    const rss = treeRssBytes(this.serverPid);
    if (rss !== null) this.rss.push(rss);
  }
}
