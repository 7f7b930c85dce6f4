package main

// Connecting to a Docker engine: unix:// and tcp:// directly, ssh:// the way the docker CLI
// does it (an `ssh ... -- docker system dial-stdio` process whose stdin/stdout carry the API).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

const defaultHost = "unix:///var/run/docker.sock"

// sshTarget is a parsed ssh://[user@]host[:port] address.
type sshTarget struct {
	user, host, port string
}

// sshArgs are the ssh arguments that open `docker system dial-stdio` on the target.
func (t sshTarget) sshArgs(extra []string) []string {
	args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"}
	args = append(args, extra...)
	if t.port != "" {
		args = append(args, "-p", t.port)
	}
	dest := t.host
	if t.user != "" {
		dest = t.user + "@" + t.host
	}
	return append(args, "--", dest, "docker", "system", "dial-stdio")
}

func parseSSH(host string) (sshTarget, error) {
	u, err := url.Parse(host)
	if err != nil {
		return sshTarget{}, fmt.Errorf("invalid docker host %q: %w", host, err)
	}
	if u.Scheme != "ssh" || u.Hostname() == "" {
		return sshTarget{}, fmt.Errorf("invalid ssh docker host %q: want ssh://[user@]host[:port]", host)
	}
	if u.Path != "" && u.Path != "/" {
		return sshTarget{}, fmt.Errorf("invalid ssh docker host %q: no path allowed", host)
	}
	if _, hasPass := u.User.Password(); hasPass {
		return sshTarget{}, fmt.Errorf("invalid ssh docker host %q: passwords are not supported, use keys", host)
	}
	return sshTarget{user: u.User.Username(), host: u.Hostname(), port: u.Port()}, nil
}

// validateHost checks a host string without connecting.
func validateHost(host string) error {
	switch {
	case strings.HasPrefix(host, "unix://"), strings.HasPrefix(host, "tcp://"):
		return nil
	case strings.HasPrefix(host, "ssh://"):
		_, err := parseSSH(host)
		return err
	}
	return fmt.Errorf("unsupported docker host %q: use unix:///path, tcp://host:port or ssh://[user@]host[:port]", host)
}

// newDockerClient returns an API client for host (API version negotiated on first use).
func newDockerClient(host string, sshOpts []string) (*client.Client, error) {
	if err := validateHost(host); err != nil {
		return nil, err
	}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if strings.HasPrefix(host, "ssh://") {
		t, _ := parseSSH(host)
		args := t.sshArgs(sshOpts)
		opts = append(opts,
			// the URL only names the HTTP Host header; every connection is a fresh ssh process
			client.WithHost("http://docker.example.com"),
			client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialCommand(ctx, "ssh", args)
			}))
	} else {
		opts = append(opts, client.WithHost(host))
	}
	return client.NewClientWithOpts(opts...)
}

// cmdConn is a net.Conn over a child process's stdin and stdout.
type cmdConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *syncBuffer
	desc   string

	closeOnce sync.Once
	waitErr   chan error
}

func dialCommand(ctx context.Context, name string, args []string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// not CommandContext: the connection outlives the request that opened it
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &cmdConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: stderr,
		desc: name + " " + strings.Join(args, " "), waitErr: make(chan error, 1)}
	go func() { c.waitErr <- cmd.Wait() }()
	return c, nil
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF {
		// the process ended: say why, if it said anything
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			return n, fmt.Errorf("%s: %s", c.desc, msg)
		}
	}
	return n, err
}

func (c *cmdConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil {
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			return n, fmt.Errorf("%s: %s (%w)", c.desc, msg, err)
		}
	}
	return n, err
}

func (c *cmdConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close()
		select {
		case <-c.waitErr:
		case <-time.After(2 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.waitErr
		}
	})
	return nil
}

type cmdAddr struct{}

func (cmdAddr) Network() string { return "cmd" }
func (cmdAddr) String() string  { return "dial-stdio" }

func (c *cmdConn) LocalAddr() net.Addr              { return cmdAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr             { return cmdAddr{} }
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }

// syncBuffer is a bytes.Buffer safe for one writer (the process) and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 { // keep the start, where ssh says what went wrong
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
