/**
 * Per-thread CPU of the gateway process, from /proc/<pid>/task/<tid>/stat, and which thread is
 * the history writer. Node names none of its threads, so the writer is found by what it does
 * when idle: a worker thread runs its own event loop and waits in epoll, where V8's platform
 * threads and libuv's pool wait on futexes. One other `node` thread also waits in epoll (the
 * platform's delayed-task loop, started before anything else); the writer is the remaining one.
 */
import { readFileSync, readdirSync } from 'node:fs';

const USER_HZ = 100;
/** x86-64 epoll_wait, epoll_pwait, epoll_pwait2 (the syscall a thread is blocked in). */
const EPOLL_SYSCALLS = new Set([232, 281, 441]);

interface Task {
  tid: number;
  comm: string;
  waitsInEpoll: boolean;
}

function tasks(pid: number): Task[] {
  const list: Task[] = [];
  for (const entry of readdirSync(`/proc/${pid}/task`)) {
    const tid = Number(entry);
    const dir = `/proc/${pid}/task/${tid}`;
    try {
      const comm = readFileSync(`${dir}/comm`, 'utf8').trim();
      const wchan = readFileSync(`${dir}/wchan`, 'utf8');
      let syscall = -1;
      try {
        syscall = Number(readFileSync(`${dir}/syscall`, 'utf8').split(' ')[0]);
      } catch {
        // not readable here: wchan alone decides
      }
      list.push({ tid, comm, waitsInEpoll: wchan.includes('epoll') || EPOLL_SYSCALLS.has(syscall) });
    } catch {
      // the thread ended meanwhile
    }
  }
  return list.sort((a, b) => a.tid - b.tid);
}

/**
 * The history writer's thread id, looked for while the gateway is idle (no clients yet), or
 * null when the threads do not fit the pattern (a few tries, as a thread may be busy a moment).
 */
export async function findWriterThread(pid: number, tries = 10): Promise<number | null> {
  for (let i = 0; i < tries; i++) {
    const loops = tasks(pid).filter((t) => t.comm === 'node' && t.tid !== pid && t.waitsInEpoll);
    if (loops.length === 2) return loops[1]!.tid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return null;
}

/** User + system CPU seconds of one thread of `pid`, or null if it is gone. */
export function threadCpuSeconds(pid: number, tid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}
