//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/sendtrace/sendtrace/internal/format"
)

// webSetup is what serve's --web.config.file turns on. The file is the
// Prometheus exporters' web configuration (tls_server_config,
// basic_auth_users, ...), served by the exporter-toolkit as node_exporter
// serves it: the toolkit reads the file again for every request (users,
// headers) and every TLS handshake (certificate, key, client CAs), and
// decides only at start whether the listener speaks TLS at all.
type webSetup struct {
	tls, clientCerts, basicAuth bool
}

func (w webSetup) scheme() string {
	if w.tls {
		return "https"
	}
	return "http"
}

func (w webSetup) String() string {
	on := []string{"plain HTTP"}
	if w.tls {
		on[0] = "TLS"
	}
	if w.clientCerts {
		on = append(on, "client certificates")
	}
	if w.basicAuth {
		on = append(on, "basic auth")
	}
	if len(on) == 1 {
		on = append(on, "no authentication")
	}
	return strings.Join(on, ", ")
}

// checkWebConfig reads the file, its certificates, keys and password
// hashes as the toolkit will, and says what it turns on. An empty path is
// plain HTTP.
func checkWebConfig(path string) (webSetup, error) {
	if path == "" {
		return webSetup{}, nil
	}
	if err := web.Validate(path); err != nil {
		return webSetup{}, oneLine(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return webSetup{}, err
	}
	var c web.Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return webSetup{}, oneLine(err)
	}
	auth := c.TLSConfig.ClientAuth
	return webSetup{
		tls:         c.TLSConfig.IsEnabled(),
		clientCerts: auth != "" && auth != "NoClientCert",
		basicAuth:   len(c.Users) > 0,
	}, nil
}

// oneLine joins a multi-line error (YAML's) into one line.
func oneLine(err error) error {
	return fmt.Errorf("%s", strings.Join(strings.Fields(err.Error()), " "))
}

// webLogger takes the toolkit's warnings and errors (a web configuration
// file that became unreadable, say) to stderr, and leaves out its
// informational lines: serve prints its own.
func webLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(prefixWriter{w, "sendtrace: web: "}, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// prefixWriter starts each write, one log line, with prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// onHangup answers each SIGHUP until ctx ends. Nothing needs reloading:
// the toolkit reads the web configuration file for every request and
// handshake. So SIGHUP checks the file, says whether it is in effect, and
// serve goes on.
func onHangup(ctx context.Context, hup <-chan os.Signal, stderr io.Writer, path string, started webSetup) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// The note names the file and what was wrong in it.
			fmt.Fprintln(stderr, "sendtrace: SIGHUP: "+format.Printable(hangupNote(path, started)))
		}
	}
}

func hangupNote(path string, started webSetup) string {
	if path == "" {
		return "no --web.config.file to read again; serving on"
	}
	now, err := checkWebConfig(path)
	switch {
	case err != nil:
		return fmt.Sprintf("--web.config.file %s: %v: every scrape fails until the file is fixed", path, err)
	case now.tls && !started.tls:
		return fmt.Sprintf("--web.config.file %s turns TLS on, but serve started without TLS: it serves plain HTTP until it is restarted", path)
	case !now.tls && started.tls:
		return fmt.Sprintf("--web.config.file %s turns TLS off, but serve started with TLS: every new connection fails until it is restarted", path)
	}
	return fmt.Sprintf("--web.config.file %s is valid (%s) and in effect: it is read on every connection and request; serving on", path, now)
}
