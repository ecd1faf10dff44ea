//go:build corpusrecord

package corpus_test

// pyClient is the Python client of the corpus (python3 -c pyClient MODE
// HOST PORT [ARG]); it prints what each step got, one line each, and
// never raises: a failure is what the case is about.
const pyClient = `
import errno, http.client, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
arg = sys.argv[4] if len(sys.argv) > 4 else ""
def say(*a): print(*a, flush=True)
def err(e): say("error", type(e).__name__, errno.errorcode.get(getattr(e, "errno", None) or 0, ""), e)
try:
    if mode == "get":
        c = http.client.HTTPConnection(host, port, timeout=float(arg or 20))
        c.request("GET", "/sleep?d=3s" if arg else "/reset")
        say(c.getresponse().read()[:20])
    elif mode == "idle":
        c = http.client.HTTPConnection(host, port, timeout=20)
        for i in range(2):
            c.request("GET", "/")
            say(i, c.getresponse().read())
            if i == 0: time.sleep(3.5)
    elif mode == "put":
        c = http.client.HTTPConnection(host, port, timeout=20)
        c.putrequest("PUT", "/upload"); c.putheader("Content-Length", str(20 << 20)); c.endheaders()
        for i in range(1280):
            c.send(b"x" * 16384); time.sleep(16384 / 200000)
        say(c.getresponse().status)
    elif mode == "connect":
        s = socket.create_connection((host, port), timeout=20); s.sendall(b"GET / HTTP/1.0\r\n\r\n"); say(s.recv(100))
    elif mode == "udp":
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((host, port)); fails = 0
        for i in range(40):
            try: s.send(b"u" * 512)
            except OSError as e:
                err(e); fails += 1
                if fails == 3: break
            time.sleep(0.1)
    elif mode == "storm":
        for i in range(30):
            try: socket.create_connection((host, port), timeout=5).close()
            except OSError as e: pass
            time.sleep(0.02)
        say("storm done")
    elif mode == "nbsend":
        s = socket.create_connection((host, port), timeout=20); s.setblocking(False); fails = 0
        for i in range(100000):
            try: s.send(b"n" * 16384)
            except BlockingIOError as e:
                fails += 1; time.sleep(0.05)
                if fails == 40: err(e); break
    elif mode == "keepalive":
        s = socket.create_connection((host, port), timeout=20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
        s.sendall(b"hello"); say(s.recv(10)); s.settimeout(None)
        try: say(s.recv(10))
        except OSError as e: err(e)
        s.sendall(b"again")
    elif mode == "usertimeout":
        s = socket.create_connection((host, port), timeout=20)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
        for i in range(400):
            s.sendall(b"t" * 16384); time.sleep(0.1)
except Exception as e:
    err(e)
`

// nodeClient is the Node.js client of the corpus (node -e nodeClient
// MODE HOST PORT).
const nodeClient = `
const http = require('http'), net = require('net');
const [mode, host, port] = process.argv.slice(1);
const say = (...a) => console.log(...a);
if (mode === 'refused') {
  http.get({ host, port: Number(port), path: '/' }, (r) => say(r.statusCode)).on('error', (e) => say('error', e.code));
} else if (mode === 'storm') {
  let n = 0;
  const again = () => {
    if (n++ === 30) return say('storm done');
    net.connect(Number(port), host).on('error', () => setTimeout(again, 20)).on('connect', function () { this.destroy(); setTimeout(again, 20); });
  };
  again();
} else if (mode === 'sink') {
  const s = net.connect(Number(port), host, () => {
    const buf = Buffer.alloc(65536, 'n');
    const t = setInterval(() => { for (let i = 0; i < 8; i++) s.write(buf); }, 20);
    setTimeout(() => { clearInterval(t); say('queued', s.writableLength); s.destroy(); }, 3000);
  });
  s.on('error', (e) => say('error', e.code));
}
`
