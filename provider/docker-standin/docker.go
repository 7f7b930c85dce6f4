package main

// The Docker side of each resource: create, inspect, delete. Inputs arrive as plain Go values
// (spec), already checked by logic.go.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// spec is a resource's inputs as plain values (strings, float64, bool, []any, map[string]any).
type spec map[string]any

func (s spec) str(k string) string {
	v, _ := s[k].(string)
	return v
}

func (s spec) num(k string) (float64, bool) {
	switch v := s[k].(type) {
	case float64:
		return v, true
	case string: // a client may send numbers as strings
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func (s spec) boolean(k string, def bool) bool {
	switch v := s[k].(type) {
	case bool:
		return v
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

func (s spec) strs(k string) []string {
	arr, _ := s[k].([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if str, ok := e.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

func (s spec) obj(k string) spec {
	m, _ := s[k].(map[string]any)
	return spec(m)
}

func (s spec) objs(k string) []spec {
	arr, _ := s[k].([]any)
	out := make([]spec, 0, len(arr))
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			out = append(out, spec(m))
		}
	}
	return out
}

func (s spec) strMap(k string) map[string]string {
	m, _ := s[k].(map[string]any)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for key, v := range m {
		out[key] = fmt.Sprint(v)
	}
	return out
}

// labels turns [{label, value}] into a map.
func (s spec) labels() map[string]string {
	ls := s.objs("labels")
	if len(ls) == 0 {
		return nil
	}
	out := make(map[string]string, len(ls))
	for _, l := range ls {
		out[l.str("label")] = l.str("value")
	}
	return out
}

func duration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

const mib = 1024 * 1024

// containerConfig renders a container spec as Docker API create arguments.
func containerConfig(s spec) (*container.Config, *container.HostConfig, error) {
	cfg := &container.Config{
		Image:  s.str("image"),
		User:   s.str("user"),
		Env:    s.strs("envs"),
		Labels: s.labels(),
	}
	if cmd := s.strs("command"); len(cmd) > 0 {
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if ep := s.strs("entrypoints"); len(ep) > 0 {
		cfg.Entrypoint = strslice.StrSlice(ep)
	}
	if wd := s.str("workingDir"); wd != "" {
		cfg.WorkingDir = wd
	}
	if h := s.str("hostname"); h != "" {
		cfg.Hostname = h
	}
	if sig := s.str("stopSignal"); sig != "" {
		cfg.StopSignal = sig
	}
	if t, ok := s.num("stopTimeout"); ok {
		n := int(t)
		cfg.StopTimeout = &n
	}
	if hc := s.obj("healthcheck"); hc != nil {
		retries, _ := hc.num("retries")
		cfg.Healthcheck = &container.HealthConfig{
			Test:        hc.strs("tests"),
			Interval:    duration(hc.str("interval")),
			Timeout:     duration(hc.str("timeout")),
			StartPeriod: duration(hc.str("startPeriod")),
			Retries:     int(retries),
		}
	}

	host := &container.HostConfig{
		ReadonlyRootfs: s.boolean("readOnly", false),
		Privileged:     s.boolean("privileged", false),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(s.str("restart"))},
		SecurityOpt:    s.strs("securityOpts"),
		Tmpfs:          s.strMap("tmpfs"),
		LogConfig:      container.LogConfig{Type: s.str("logDriver"), Config: s.strMap("logOpts")},
	}
	if n, ok := s.num("maxRetryCount"); ok && host.RestartPolicy.Name == "on-failure" {
		host.RestartPolicy.MaximumRetryCount = int(n)
	}
	if nm := s.str("networkMode"); nm != "" {
		host.NetworkMode = container.NetworkMode(nm)
	}
	if m, ok := s.num("memory"); ok && m > 0 {
		host.Memory = int64(m) * mib
	}
	if m, ok := s.num("memorySwap"); ok && m != 0 {
		if m < 0 {
			host.MemorySwap = -1
		} else {
			host.MemorySwap = int64(m) * mib
		}
	}
	if c, ok := s.num("cpuShares"); ok {
		host.CPUShares = int64(c)
	}
	host.CpusetCpus = s.str("cpuSet")
	if caps := s.obj("capabilities"); caps != nil {
		host.CapDrop = caps.strs("drops")
		host.CapAdd = caps.strs("adds")
	}
	for _, v := range s.objs("volumes") {
		src := v.str("volumeName")
		if src == "" {
			src = v.str("hostPath")
		}
		target := v.str("containerPath")
		if src == "" { // an anonymous volume
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[target] = struct{}{}
			continue
		}
		bind := src + ":" + target
		if v.boolean("readOnly", false) {
			bind += ":ro"
		}
		host.Binds = append(host.Binds, bind)
	}
	for _, m := range s.objs("mounts") {
		host.Mounts = append(host.Mounts, mount.Mount{
			Type:     mount.Type(m.str("type")),
			Source:   m.str("source"),
			Target:   m.str("target"),
			ReadOnly: m.boolean("readOnly", false),
		})
	}
	for _, p := range s.objs("ports") {
		internal, _ := p.num("internal")
		proto := p.str("protocol")
		if proto == "" {
			proto = "tcp"
		}
		port, err := nat.NewPort(proto, strconv.Itoa(int(internal)))
		if err != nil {
			return nil, nil, fmt.Errorf("ports: %w", err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			host.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		binding := nat.PortBinding{HostIP: p.str("ip")}
		if ext, ok := p.num("external"); ok && ext > 0 {
			binding.HostPort = strconv.Itoa(int(ext))
		}
		host.PortBindings[port] = append(host.PortBindings[port], binding)
	}
	return cfg, host, nil
}

// uploadTar is a tar stream with the one file of an upload, named by its base name, owned by
// root, mode 0644 (0744 when executable), as the upstream provider writes it.
func uploadTar(u spec) (dir string, body io.Reader, err error) {
	file := u.str("file")
	if !path.IsAbs(file) {
		return "", nil, fmt.Errorf("upload path %q must be absolute", file)
	}
	var content []byte
	if b64 := u.str("contentBase64"); b64 != "" {
		if content, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return "", nil, fmt.Errorf("upload %s: contentBase64: %w", file, err)
		}
	} else {
		content = []byte(u.str("content"))
	}
	mode := int64(0o644)
	if u.boolean("executable", false) {
		mode = 0o744
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path.Base(file),
		Mode:     mode,
		Size:     int64(len(content)),
		ModTime:  time.Now(),
		Uid:      0,
		Gid:      0,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return "", nil, err
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	return path.Dir(file), &buf, nil
}

// createContainer creates, fills and starts a container; on any failure after the create it
// removes the container again (nothing half-made is left behind) and says why it failed.
func createContainer(ctx context.Context, cli *client.Client, s spec) (string, error) {
	cfg, host, err := containerConfig(s)
	if err != nil {
		return "", err
	}
	name := s.str("name")
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", name, err)
	}
	id := created.ID
	fail := func(err error) (string, error) {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if rmErr := cli.ContainerRemove(rmCtx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			err = fmt.Errorf("%w (removing the failed container also failed: %v)", err, rmErr)
		}
		return "", err
	}
	for _, u := range s.objs("uploads") {
		dir, body, err := uploadTar(u)
		if err != nil {
			return fail(err)
		}
		if err := cli.CopyToContainer(ctx, id, dir, body, container.CopyToContainerOptions{}); err != nil {
			return fail(fmt.Errorf("uploading %s into container %s: %w", u.str("file"), name, err))
		}
	}
	if !s.boolean("start", true) {
		return id, nil
	}
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fail(fmt.Errorf("starting container %s: %w", name, err))
	}
	if s.boolean("wait", false) {
		timeout, ok := s.num("waitTimeout")
		if !ok || timeout <= 0 {
			timeout = 60
		}
		if err := waitHealthy(ctx, cli, id, time.Duration(timeout)*time.Second); err != nil {
			return fail(fmt.Errorf("container %s: %w", name, err))
		}
	}
	if s.boolean("mustRun", true) {
		info, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return fail(fmt.Errorf("inspecting container %s: %w", name, err))
		}
		if info.State == nil || !info.State.Running {
			return fail(fmt.Errorf("container %s is not running (mustRun): %s%s", name, describeState(info), logTail(ctx, cli, id)))
		}
	}
	return id, nil
}

// waitHealthy polls until the healthcheck says healthy (or, without a healthcheck, until the
// container runs).
func waitHealthy(ctx context.Context, cli *client.Client, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last container.InspectResponse
	for {
		info, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspecting: %w", err)
		}
		last = info
		st := info.State
		if st != nil {
			if st.Health == nil && st.Running {
				return nil
			}
			if st.Health != nil && st.Health.Status == container.Healthy {
				return nil
			}
			if !st.Running && !st.Restarting && info.HostConfig != nil && info.HostConfig.RestartPolicy.Name == "no" {
				return fmt.Errorf("exited before it became healthy: %s%s", describeState(info), logTail(ctx, cli, id))
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("not healthy after %s: %s%s", timeout, describeState(last), logTail(ctx, cli, id))
}

// describeState is the container's state and its last healthcheck results, for errors.
func describeState(info container.InspectResponse) string {
	st := info.State
	if st == nil {
		return "no state"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "status %s", st.Status)
	if !st.Running {
		fmt.Fprintf(&b, ", exit code %d", st.ExitCode)
	}
	if st.Error != "" {
		fmt.Fprintf(&b, ", error %q", st.Error)
	}
	if st.Health != nil {
		fmt.Fprintf(&b, ", health %s (failing streak %d)", st.Health.Status, st.Health.FailingStreak)
		logs := st.Health.Log
		if len(logs) > 3 {
			logs = logs[len(logs)-3:]
		}
		for _, l := range logs {
			fmt.Fprintf(&b, "\n  healthcheck at %s exit %d: %s", l.End.Format(time.RFC3339), l.ExitCode, strings.TrimSpace(l.Output))
		}
	}
	return b.String()
}

// logTail is the last lines of the container's own output, for errors (best effort).
func logTail(ctx context.Context, cli *client.Client, id string) string {
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "15"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	raw, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	text := strings.TrimSpace(demux(raw))
	if text == "" {
		return ""
	}
	return "\n  last container output:\n    " + strings.ReplaceAll(text, "\n", "\n    ")
}

// demux strips Docker's 8-byte stream headers from a non-tty log stream.
func demux(raw []byte) string {
	var b strings.Builder
	for len(raw) >= 8 && (raw[0] == 1 || raw[0] == 2) && raw[1] == 0 && raw[2] == 0 && raw[3] == 0 {
		n := int(raw[4])<<24 | int(raw[5])<<16 | int(raw[6])<<8 | int(raw[7])
		raw = raw[8:]
		if n > len(raw) {
			n = len(raw)
		}
		b.Write(raw[:n])
		raw = raw[n:]
	}
	b.Write(raw)
	return b.String()
}

// deleteContainer stops (stop signal, then kill after grace seconds) and removes a container;
// named volumes stay.
func deleteContainer(ctx context.Context, cli *client.Client, id string, s spec) error {
	opts := container.StopOptions{}
	if g, ok := s.num("destroyGraceSeconds"); ok {
		n := int(g)
		opts.Timeout = &n
	}
	if err := cli.ContainerStop(ctx, id, opts); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("stopping container %s: %w", id, err)
	}
	err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: s.boolean("removeVolumes", true)})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// containerExists says whether the container id is still on the engine.
func containerExists(ctx context.Context, cli *client.Client, id string) (bool, error) {
	_, err := cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// createVolume creates a volume and returns its name, driver and mountpoint.
func createVolume(ctx context.Context, cli *client.Client, s spec) (volume.Volume, error) {
	v, err := cli.VolumeCreate(ctx, volume.CreateOptions{
		Name:       s.str("name"),
		Driver:     s.str("driver"),
		DriverOpts: s.strMap("driverOpts"),
		Labels:     s.labels(),
	})
	if err != nil {
		return v, fmt.Errorf("creating volume %s: %w", s.str("name"), err)
	}
	return v, nil
}

// deleteVolume removes a volume, waiting up to 30 s while a container being removed still uses it.
func deleteVolume(ctx context.Context, cli *client.Client, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cli.VolumeRemove(ctx, name, false)
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if !cerrdefs.IsConflict(err) || time.Now().After(deadline) {
			return fmt.Errorf("removing volume %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// ensureImage finds the image locally or pulls it; it returns the image ID and a repo digest.
func ensureImage(ctx context.Context, cli *client.Client, hostDesc, name string) (id, digest string, err error) {
	info, err := cli.ImageInspect(ctx, name)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return "", "", fmt.Errorf("inspecting image %s: %w", name, err)
	}
	if err != nil {
		if perr := pullImage(ctx, cli, name); perr != nil {
			return "", "", fmt.Errorf("image %s is not on the Docker engine at %s and pulling it failed: %v "+
				"(on an offline site load it first, e.g. `docker save %s | ssh <host> docker load`)", name, hostDesc, perr, name)
		}
		if info, err = cli.ImageInspect(ctx, name); err != nil {
			return "", "", fmt.Errorf("inspecting image %s after the pull: %w", name, err)
		}
	}
	return info.ID, repoDigest(info.RepoDigests, name), nil
}

func repoDigest(digests []string, name string) string {
	if len(digests) == 0 {
		return ""
	}
	repo := name
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	sorted := append([]string(nil), digests...)
	sort.Strings(sorted)
	for _, d := range sorted {
		if strings.HasPrefix(d, repo+"@") {
			return d
		}
	}
	return sorted[0]
}

func pullImage(ctx context.Context, cli *client.Client, name string) error {
	rc, err := cli.ImagePull(ctx, name, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// deleteImage removes the image unless keepLocally; an image already gone is fine.
func deleteImage(ctx context.Context, cli *client.Client, s spec) error {
	if s.boolean("keepLocally", false) {
		return nil
	}
	// by name: that removes this tag only, and the image only when no other tag holds it (an
	// image ID with other tags would need force, which would take those tags with it)
	ref := s.str("name")
	if ref == "" {
		ref = s.str("imageId")
	}
	_, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: s.boolean("forceRemove", false), PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing image %s: %w", s.str("name"), err)
	}
	return nil
}

func isNotFound(err error) bool { return err != nil && cerrdefs.IsNotFound(err) }
