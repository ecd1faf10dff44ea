package netlab

// NodeHTTPServer is a Node.js HTTP server (node SCRIPT HOST PORT READY)
// that writes READY once it listens. It answers every request with a
// small body and keeps idle keep-alive connections far longer than the
// middlebox does.
const NodeHTTPServer = `
const http = require('http');
const [host, port, ready] = process.argv.slice(2);
const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok\n')); });
srv.keepAliveTimeout = 60000;
srv.listen(Number(port), host, () => require('fs').writeFileSync(ready, ''));
`

// NodeHTTPClient is a pooled Node.js HTTP client (node SCRIPT HOST PORT
// GOFILE IDLE_MS [BUSY_MS]): a warm-up request on a connection of its
// own, then, once GOFILE exists, request 1, more requests every 100 ms for
// BUSY_MS (default none), a silence of IDLE_MS (longer than the
// middlebox's idle timeout), and a last request on the same kept-alive
// socket. It prints what each request got, as JSON.
const NodeHTTPClient = `
const http = require('http');
const fs = require('fs');
const [host, port, goFile, idleMs, busyMs] = process.argv.slice(2);
// keepAliveMsecs is also the socket's TCP keepalive delay: at its default
// (1 s) the probes would keep the middlebox's flow alive.
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30000, maxSockets: 1 });
const results = [];
function get(n, via = agent) {
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: '/' + n, agent: via }, (res) => {
      res.resume();
      res.on('end', () => { results.push({ n, status: res.statusCode, reused: req.reusedSocket }); resolve(); });
    });
    req.on('error', (e) => { results.push({ n, error: e.code, reused: req.reusedSocket }); resolve(); });
  });
}
(async () => {
  // A first request on a throwaway connection warms both ends up, so the
  // pooled connection's answer comes within milliseconds of its handshake,
  // as on a fast network.
  await get(0, false);
  while (!fs.existsSync(goFile)) await new Promise((r) => setTimeout(r, 20));
  await get(1);
  let n = 2;
  for (const until = Date.now() + Number(busyMs || 0); Date.now() < until; n++) {
    await new Promise((r) => setTimeout(r, 100));
    await get(n);
  }
  await new Promise((r) => setTimeout(r, Number(idleMs)));
  await get(n);
  console.log(JSON.stringify({ pid: process.pid, results }));
  agent.destroy();
})();
`
