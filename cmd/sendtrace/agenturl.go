package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sendtrace/sendtrace/internal/format"
)

// agentHeader is on every answer of serve's /recording, with serve's
// version: it tells a sendtrace agent from any other server.
const agentHeader = "Sendtrace-Agent"

// agentErrorTrailer carries what went wrong once a recording's stream
// had begun, when its status could no longer say it.
const agentErrorTrailer = "Sendtrace-Error"

// isAgentURL says whether a command-line argument names an agent (sendtrace
// serve) rather than a file.
func isAgentURL(arg string) bool {
	return strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://")
}

// agentFlags say how to reach agents; the window to fetch from them is
// --since, --until and the filters, as for --flight.
type agentFlags struct {
	authFile string
	caFile   string
}

func (a *agentFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&a.authFile, "auth-file", "", "with an agent's URL: a file whose one line is USER:PASSWORD, for the agent's basic auth")
	fl.StringVar(&a.caFile, "ca-file", "", "with an https:// agent URL: the PEM certificate of the CA that signed the agents' certificates")
}

// recordingFiles are a command's recordings as local files: a file
// argument is itself; an agent's URL is its window, fetched into a
// temporary file (0600) that remove deletes. names are what the output
// calls them: the arguments as given.
type recordingFiles struct {
	paths, names []string
	temps        []string
}

// openRecordings turns report's arguments into local recordings: a file
// is itself; --flight's window and each agent's are written to temporary
// files.
func openRecordings(args []string, win *windowFlags, a *agentFlags, stderr io.Writer) (*recordingFiles, error) {
	if win.dir != "" {
		path, name, err := win.tempWindow(time.Now())
		if err != nil {
			return nil, err
		}
		return &recordingFiles{paths: []string{path}, names: []string{name}, temps: []string{path}}, nil
	}
	if err := findDuplicateURL(args); err != nil {
		return nil, err
	}
	var urls []*url.URL
	for _, arg := range args {
		if !isAgentURL(arg) {
			continue
		}
		u, err := parseAgentURL(arg)
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		if win.since != "" || win.until != "" || win.hasFilters() {
			return nil, errors.New("--since, --until and the filters pick a window of a flight recording: give --flight DIR, or agents' URLs (https://node-a:9464)")
		}
		for flag, v := range map[string]string{"--auth-file": a.authFile, "--ca-file": a.caFile} {
			if v != "" {
				return nil, fmt.Errorf("%s goes with an agent's URL (https://node-a:9464): give one, or leave %s out to read files", flag, flag)
			}
		}
		return &recordingFiles{paths: args, names: args}, nil
	}
	return a.fetch(args, urls, win, stderr)
}

// fetch fetches the window of every agent URL among args. The agents'
// clocks are their own: --since 20m is sent as it is, so each agent takes
// its last 20 minutes, and the join estimates the offset between them.
func (a *agentFlags) fetch(args []string, urls []*url.URL, win *windowFlags, stderr io.Writer) (*recordingFiles, error) {
	// Checked here as the agents will check them, so that a typo is one
	// line before anything crosses the network.
	if _, _, err := win.window(time.Now()); err != nil {
		return nil, err
	}
	if _, err := win.filter(); err != nil {
		return nil, err
	}
	client, err := a.client()
	if err != nil {
		return nil, err
	}
	user, pass, err := a.credentials()
	if err != nil {
		return nil, err
	}
	r := &recordingFiles{paths: slices.Clone(args), names: args}
	i := 0
	for k, arg := range args {
		if !isAgentURL(arg) {
			continue
		}
		u := urls[i]
		i++
		if user != "" && u.Scheme == "http" {
			fmt.Fprintf(stderr, "sendtrace: %s is plain HTTP: the password of --auth-file crosses the network in the clear\n", format.Printable(arg))
		}
		path, err := a.fetchOne(client, u, win.query(), arg, user, pass)
		if err != nil {
			r.remove()
			return nil, err
		}
		r.temps = append(r.temps, path)
		r.paths[k] = path
	}
	return r, nil
}

// parseAgentURL reads http(s)://HOST:PORT[/PREFIX], to which /recording is
// added; a query in it is kept (filters for that agent alone).
func parseAgentURL(arg string) (*url.URL, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid agent URL %q: %s: give http:// or https:// and the agent's host and port, such as https://node-a:9464", arg, why)
	}
	u, err := url.Parse(arg)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, bad(err.Error())
	}
	if u.Hostname() == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		if _, err := parsePort(p); err != nil {
			return nil, bad("invalid port " + p)
		}
	}
	if u.User != nil {
		return nil, fmt.Errorf("agent URL %q has a user in it: give the user and password in --auth-file instead (a command line is visible to every user of the host)", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, bad("it has a fragment (#...)")
	}
	if !strings.HasSuffix(u.Path, "/recording") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/recording"
	}
	return u, nil
}

// client is the HTTP client for the agents, trusting --ca-file's CA
// alone when it is given.
func (a *agentFlags) client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // agents are reached directly, as Prometheus scrapes them
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	// The agent answers once it has found the window's first segment;
	// the stream after it may take as long as the window is large.
	tr.ResponseHeaderTimeout = 2 * time.Minute
	if a.caFile != "" {
		b, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --ca-file %s: %v: give the PEM certificate of the CA that signed the agents' certificates", a.caFile, unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("invalid --ca-file %s: no PEM certificate in it: give the CA certificate that signed the agents' certificates", a.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a password is not sent on elsewhere
	}}, nil
}

// credentials reads --auth-file: one line, USER:PASSWORD (the password
// may hold colons).
func (a *agentFlags) credentials() (user, pass string, err error) {
	if a.authFile == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(a.authFile)
	if err != nil {
		return "", "", fmt.Errorf("cannot read --auth-file %s: %v: give a file whose one line is USER:PASSWORD", a.authFile, unwrapPath(err))
	}
	line := strings.TrimRight(string(b), "\r\n")
	user, pass, ok := strings.Cut(line, ":")
	if !ok || user == "" || strings.ContainsAny(line, "\r\n") {
		return "", "", fmt.Errorf("invalid --auth-file %s: give one line, USER:PASSWORD", a.authFile)
	}
	return user, pass, nil
}

// fetchOne streams one agent's window into a temporary file.
func (a *agentFlags) fetchOne(client *http.Client, u *url.URL, window url.Values, name, user, pass string) (string, error) {
	q := u.Query()
	for k, v := range window {
		q[k] = append(q[k], v...)
	}
	req, err := http.NewRequest(http.MethodGet, (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: q.Encode()}).String(), nil)
	if err != nil {
		return "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", unreachable(name, err)
	}
	defer resp.Body.Close()
	if err := a.refused(resp, name); err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "sendtrace-agent-*.jsonl.zst")
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", name, err)
	}
	n, err := io.Copy(f, resp.Body)
	err = errors.Join(err, f.Close())
	if err == nil && resp.Trailer.Get(agentErrorTrailer) != "" {
		err = errors.New(resp.Trailer.Get(agentErrorTrailer))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("agent %s stopped sending its recording after %d bytes: %v: try again", name, n, err)
	}
	return f.Name(), nil
}

// refused says why an agent's answer is not a recording, in one line.
func (a *agentFlags) refused(resp *http.Response, name string) error {
	if resp.StatusCode == http.StatusUnauthorized {
		if a.authFile == "" {
			return fmt.Errorf("agent %s asks for a user and password: give --auth-file FILE, whose one line is USER:PASSWORD", name)
		}
		return fmt.Errorf("agent %s refused the user and password of --auth-file %s (401 Unauthorized): give the ones its web configuration file lists under basic_auth_users", name, a.authFile)
	}
	if resp.Header.Get(agentHeader) == "" {
		if b, _ := io.ReadAll(io.LimitReader(resp.Body, 512)); strings.Contains(string(b), "HTTP request to an HTTPS server") {
			return fmt.Errorf("agent %s speaks TLS: give its URL with https://", name)
		}
		return fmt.Errorf("%s is not a sendtrace agent (it answered %q): give the address of sendtrace serve, such as https://node-a:9464", name, resp.Status)
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		line = resp.Status
	}
	return fmt.Errorf("agent %s: %s", name, line)
}

// unreachable says why an agent could not be asked, with what to do.
func unreachable(name string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &verify):
		return fmt.Errorf("agent %s: its certificate is not trusted (%v): give the CA certificate that signed it with --ca-file", name, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("agent %s speaks plain HTTP: give its URL with http://", name)
	}
	return fmt.Errorf("cannot reach agent %s: %v: give the address sendtrace serve prints (its --listen)", name, err)
}

// remove deletes the fetched windows.
func (r *recordingFiles) remove() {
	for _, p := range r.temps {
		_ = os.Remove(p)
	}
}

// name is what the output calls the recording at path.
func (r *recordingFiles) name(path string) string {
	for i, p := range r.paths {
		if p == path {
			return r.names[i]
		}
	}
	return path
}

// rename puts the names of fetched windows in place of their temporary
// files in err.
func (r *recordingFiles) rename(err error) error {
	if err == nil || len(r.temps) == 0 {
		return err
	}
	msg := err.Error()
	for _, p := range r.temps {
		msg = strings.ReplaceAll(msg, p, r.name(p))
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// findDuplicateURL refuses one agent's URL given twice: the join needs one
// recording per end.
func findDuplicateURL(args []string) error {
	for j, b := range args {
		for _, a := range args[:j] {
			if isAgentURL(a) && a == b {
				return fmt.Errorf("%s is given twice: give one recording per end, made at the same time", a)
			}
		}
	}
	return nil
}
