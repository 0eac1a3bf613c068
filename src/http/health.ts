/**
 * `/healthz` and `/readyz`: the process answers at all; and it has a live feed to serve (or none
 * configured, as with `--feed none`, where external publishers feed it).
 */
import type { ServerResponse } from 'node:http';

export function healthz(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
}

export function readyz(response: ServerResponse, ready: boolean): void {
  response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'no adapter is live\n');
}
