/**
 * A closed stdout or stderr must not end a long-running process. With output piped
 * (`tickcast start | tee log`), Ctrl-C stops the reader as well, and the next write (the summary,
 * a log line of the graceful shutdown) fails with EPIPE. Node reports that as an 'error' event on
 * the stream; unhandled, it would kill the process halfway through its shutdown, leaving clients
 * unclosed and its registry entry behind. Handled, what is written to the gone reader is dropped
 * (the stream is destroyed, so later writes are no-ops) and the process carries on.
 */

/** Makes a write error on `stream` harmless (an entry point installs it once). */
export function tolerateClosedOutput(stream: NodeJS.WritableStream & { on(event: 'error', listener: (error: Error) => void): unknown }): void {
  // Nothing to report to: the stream that failed is where reports go.
  stream.on('error', () => {});
}

/** The process's stdout and stderr. */
export function tolerateClosedStdio(): void {
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
}
