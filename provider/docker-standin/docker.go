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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
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

// errors named as upstream names them (resource_docker_container_funcs.go)
var (
	errContainerFailedToBeCreated        = errors.New("container failed to be created")
	errContainerFailedToBeDeleted        = errors.New("container failed to be deleted")
	errContainerExitedImmediately        = errors.New("container exited immediately")
	errContainerFailedToBeInRunningState = errors.New("container failed to be in running state")
	errContainerFailedToBeInHealthyState = errors.New("container failed to be in healthy state")
)

// creationTime mirrors upstream's package-level `creationTime`: set when this provider process
// starts a container, read by every later container Read of the same process (must_run).
var creationTime struct {
	sync.Mutex
	t time.Time
}

func setCreationTime(t time.Time) {
	creationTime.Lock()
	creationTime.t = t
	creationTime.Unlock()
}

func getCreationTime() time.Time {
	creationTime.Lock()
	defer creationTime.Unlock()
	return creationTime.t
}

// containerConfig renders a container spec as Docker API create arguments, as
// resourceDockerContainerCreate does (only the attributes the stand-in accepts).
func containerConfig(s spec) (*container.Config, *container.HostConfig, error) {
	cfg := &container.Config{
		Image:      s.str("image"),
		Hostname:   s.str("hostname"),
		Domainname: s.str("domainname"),
		Tty:        s.boolean("tty", false),
		OpenStdin:  s.boolean("stdinOpen", false),
		StopSignal: s.str("stopSignal"),
		User:       s.str("user"),
		WorkingDir: s.str("workingDir"),
	}
	if t, ok := s.num("stopTimeout"); ok && t != 0 {
		n := int(t)
		cfg.StopTimeout = &n
	}
	if env := s.strs("envs"); len(env) > 0 {
		cfg.Env = env
	}
	if cmd := s.strs("command"); len(cmd) > 0 {
		for _, c := range cmd {
			if c == "" {
				return nil, nil, errors.New("values for command may not be empty")
			}
		}
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if ep := s.strs("entrypoints"); len(ep) > 0 {
		cfg.Entrypoint = strslice.StrSlice(ep)
	}
	if l := s.labels(); len(l) > 0 {
		cfg.Labels = l
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
	maxRetry, _ := s.num("maxRetryCount")
	init := s.boolean("init", false)
	host := &container.HostConfig{
		Privileged:      s.boolean("privileged", false),
		PublishAllPorts: s.boolean("publishAllPorts", false),
		RestartPolicy: container.RestartPolicy{
			Name:              container.RestartPolicyMode(s.str("restart")),
			MaximumRetryCount: int(maxRetry),
		},
		Runtime:        s.str("runtime"),
		AutoRemove:     s.boolean("rm", false),
		ReadonlyRootfs: s.boolean("readOnly", false),
		LogConfig:      container.LogConfig{Type: s.str("logDriver"), Config: s.strMap("logOpts")},
		Tmpfs:          s.strMap("tmpfs"),
		SecurityOpt:    s.strs("securityOpts"),
		Init:           &init,
	}
	if len(host.SecurityOpt) == 0 {
		host.SecurityOpt = nil
	}
	host.DNS, host.DNSOptions, host.DNSSearch = s.strs("dns"), s.strs("dnsOpts"), s.strs("dnsSearches")
	host.Links, host.GroupAdd = s.strs("links"), s.strs("groupAdds")
	host.Sysctls, host.StorageOpt = s.strMap("sysctls"), s.strMap("storageOpts")
	host.IpcMode, host.PidMode = container.IpcMode(s.str("ipcMode")), container.PidMode(s.str("pidMode"))
	host.UsernsMode = container.UsernsMode(s.str("usernsMode"))
	if m, ok := s.num("shmSize"); ok && m != 0 {
		host.ShmSize = int64(m) * mib
	}
	for _, eh := range s.objs("hosts") {
		host.ExtraHosts = append(host.ExtraHosts, eh.str("host")+":"+eh.str("ip"))
	}
	for _, u := range s.objs("ulimits") {
		soft, _ := u.num("soft")
		hard, _ := u.num("hard")
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: u.str("name"), Soft: int64(soft), Hard: int64(hard)})
	}
	if nm := s.str("networkMode"); nm != "" {
		host.NetworkMode = container.NetworkMode(nm)
	}
	if m, ok := s.num("memory"); ok && m != 0 {
		host.Memory = int64(m) * mib
	}
	if m, ok := s.num("memorySwap"); ok && m != 0 {
		swap := int64(m)
		if swap > 0 {
			swap *= mib
		}
		host.MemorySwap = swap
	}
	if c, ok := s.num("cpuShares"); ok && c != 0 {
		host.CPUShares = int64(c)
	}
	host.CpusetCpus = s.str("cpuSet")
	if caps := s.obj("capabilities"); caps != nil {
		host.CapAdd = caps.strs("adds")
		host.CapDrop = caps.strs("drops")
	}
	// volumeSetToDockerVolumes: a named or host source becomes a bind "src:path:rw|ro" and a
	// Config.Volumes entry; no source, an anonymous volume.
	for _, v := range s.objs("volumes") {
		src := v.str("volumeName")
		if src == "" {
			src = v.str("hostPath")
		}
		target := v.str("containerPath")
		if target == "" {
			return nil, nil, errors.New("Unable to parse volumes: volume entry without container path or source container")
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[target] = struct{}{}
		if src != "" {
			mode := "rw"
			if v.boolean("readOnly", false) {
				mode = "ro"
			}
			host.Binds = append(host.Binds, src+":"+target+":"+mode)
		}
	}
	for _, m := range s.objs("mounts") {
		host.Mounts = append(host.Mounts, mount.Mount{
			Type:     mount.Type(m.str("type")),
			Source:   m.str("source"),
			Target:   m.str("target"),
			ReadOnly: m.boolean("readOnly", false),
		})
	}
	// portSetToDockerPorts: every port is exposed and bound (external 0 when not given)
	for _, p := range s.objs("ports") {
		internal, _ := p.num("internal")
		external, _ := p.num("external")
		proto := p.str("protocol")
		port, err := nat.NewPort(proto, strconv.Itoa(int(internal)))
		if err != nil {
			return nil, nil, fmt.Errorf("ports: %w", err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			host.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		host.PortBindings[port] = append(host.PortBindings[port],
			nat.PortBinding{HostIP: p.str("ip"), HostPort: strconv.Itoa(int(external))})
	}
	return cfg, host, nil
}

// uploadTar is the tar stream of one upload as resourceDockerContainerCreate writes it: one
// entry named by the file's full path, mode 0644 (0744 when executable), its size, ModTime now,
// and nothing else (uid/gid 0, no user or group names, type flag left to the tar writer). It is
// copied to "/" of the container.
func uploadTar(u spec) (io.Reader, error) {
	file := u.str("file")
	var content []byte
	switch {
	case u.str("content") != "":
		content = []byte(u.str("content"))
	case u.str("contentBase64") != "":
		content, _ = base64.StdEncoding.DecodeString(u.str("contentBase64")) // upstream ignores decode errors
	}
	mode := int64(0o644)
	if u.boolean("executable", false) {
		mode = 0o744
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: mode, Size: int64(len(content)), ModTime: time.Now()}); err != nil {
		return nil, fmt.Errorf("Error creating tar archive: %s", err)
	}
	if _, err := tw.Write(content); err != nil {
		return nil, fmt.Errorf("Error creating tar archive: %s", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("Error creating tar archive: %s", err)
	}
	return &buf, nil
}

// uploadDestination is where every upload's tar is copied: the container's root.
const uploadDestination = "/"

// createContainer mirrors resourceDockerContainerCreate: find (or pull) the image, create the
// container, upload the files, start it when `start`, wait for healthy when `wait`, then Read.
// Once the container exists its ID is returned even with an error (upstream has called
// d.SetId: the bridge reports a partially created resource), unless Read removed it again.
func createContainer(ctx context.Context, cli *client.Client, s spec) (id string, outs resource.PropertyMap, err error) {
	img := s.str("image")
	if _, err := findImage(ctx, cli, img); err != nil {
		return "", nil, fmt.Errorf("Unable to create container with image %s: %s", img, err)
	}
	cfg, host, err := containerConfig(s)
	if err != nil {
		return "", nil, err
	}
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, s.str("name"))
	if err != nil {
		return "", nil, fmt.Errorf("Unable to create container: %s", err)
	}
	id = created.ID
	for _, u := range s.objs("uploads") {
		body, err := uploadTar(u)
		if err != nil {
			return id, nil, err
		}
		if err := cli.CopyToContainer(ctx, id, uploadDestination, body, container.CopyToContainerOptions{}); err != nil {
			return id, nil, fmt.Errorf("Unable to upload volume content: %s", err)
		}
	}
	if s.boolean("start", true) {
		setCreationTime(time.Now())
		if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return id, nil, fmt.Errorf("Unable to start container: %s", err)
		}
		if s.boolean("wait", false) {
			timeout, _ := s.num("waitTimeout")
			if err := waitHealthy(ctx, cli, id, time.Duration(timeout)*time.Second); err != nil {
				return id, nil, err
			}
		}
	}
	return readContainer(ctx, cli, id, s)
}

// waitHealthy mirrors the `wait` loop: inspect every second until the health status is
// "healthy"; after waitTimeout, errContainerFailedToBeInHealthyState (with the last state and
// output appended here). Upstream dereferences State.Health, so a container without a
// healthcheck crashes the provider; the stand-in reports an error instead.
func waitHealthy(ctx context.Context, cli *client.Client, id string, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last container.InspectResponse
	for {
		info, err := cli.ContainerInspect(wctx, id)
		if err == nil {
			last = info
			if info.State == nil || info.State.Health == nil {
				return fmt.Errorf("wait: the container has no healthcheck (the upstream provider crashes here): %s", describeState(info))
			}
			if info.State.Health.Status == container.Healthy {
				return nil
			}
		} else if wctx.Err() == nil {
			return fmt.Errorf("error inspecting container state: %s", err)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w (after %s): %s%s", errContainerFailedToBeInHealthyState, timeout,
				describeState(last), logTail(context.WithoutCancel(ctx), cli, id))
		case <-time.After(time.Second):
		}
	}
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

// mustRunVerdict is the decision of resourceDockerContainerReadRefreshFunc and the check after
// it in resourceDockerContainerRead, as a pure function: what Read does with a container in
// state st, given mustRun and the time this provider process last started a container.
type mustRunVerdict int

const (
	verdictRead             mustRunVerdict = iota // read it into the state
	verdictDeleteGone                             // delete it; the resource is gone, no error
	verdictDeleteExited                           // delete it; error "container exited immediately"
	verdictDeleteNotRunning                       // delete it; error "container failed to be in running state"
	verdictError                                  // FinishedAt unparsable: error, nothing deleted
)

func mustRunCheck(running, mustRun bool, finishedAt string, created time.Time) (mustRunVerdict, error) {
	if running || !mustRun {
		return verdictRead, nil
	}
	if created.IsZero() { // this process started no container: "not created"
		return verdictDeleteGone, nil
	}
	finish, err := time.Parse(time.RFC3339, finishedAt)
	if err != nil {
		return verdictError, err
	}
	if finish.After(created) {
		return verdictDeleteExited, nil
	}
	// the refresh function says "running"; Read's own check then finds it not running
	return verdictDeleteNotRunning, nil
}

// readContainer mirrors resourceDockerContainerRead: a container missing from the container
// list is gone (empty ID); one that is not running while mustRun is true is deleted (see
// mustRunCheck); otherwise the state takes what containerReadback reads. s is the state (or,
// from Create, the inputs); the returned outputs are s with the read values merged in.
func readContainer(ctx context.Context, cli *client.Client, id string, s spec) (string, resource.PropertyMap, error) {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return id, nil, fmt.Errorf("error fetching container information from Docker: %s\n", err)
	}
	found := false
	for _, c := range list {
		if c.ID == id {
			found = true
			break
		}
	}
	if !found {
		return "", nil, nil
	}
	timeoutMs, _ := s.num("containerReadRefreshTimeoutMilliseconds")
	if timeoutMs == 0 {
		timeoutMs = 15000
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	select { // StateChangeConf Delay
	case <-time.After(100 * time.Millisecond):
	case <-rctx.Done():
		return id, nil, rctx.Err()
	}
	info, err := cli.ContainerInspect(rctx, id)
	if err != nil {
		return id, nil, err
	}
	running := info.State != nil && info.State.Running
	finished := ""
	if info.State != nil {
		finished = info.State.FinishedAt
	}
	verdict, err := mustRunCheck(running, s.boolean("mustRun", true), finished, getCreationTime())
	switch verdict {
	case verdictError:
		return id, nil, err
	case verdictDeleteGone:
		if err := deleteContainer(ctx, cli, id, s); err != nil {
			return id, nil, err
		}
		return "", nil, nil
	case verdictDeleteExited:
		if err := deleteContainer(ctx, cli, id, s); err != nil {
			return id, nil, errContainerFailedToBeDeleted
		}
		return "", nil, fmt.Errorf("%w: %s%s", errContainerExitedImmediately, describeState(info), logTail(ctx, cli, id))
	case verdictDeleteNotRunning:
		if err := deleteContainer(ctx, cli, id, s); err != nil {
			return id, nil, err
		}
		return "", nil, fmt.Errorf("%w: %s", errContainerFailedToBeInRunningState, describeState(info))
	}
	outs := resource.NewPropertyMapFromMap(map[string]any(s))
	return info.ID, mergeInto(outs, containerReadback(info)), nil
}

// updateContainer mirrors resourceDockerContainerUpdate: when restart, max_retry_count,
// cpu_shares, memory, cpu_set or memory_swap changed, one ContainerUpdate with all six from
// the new inputs; nothing else reaches Docker.
func updateContainer(ctx context.Context, cli *client.Client, id string, changed []string, news spec) error {
	apply := false
	for _, k := range changed {
		if slices.Contains(containerUpdateKeys, k) {
			apply = true
		}
	}
	if !apply {
		return nil
	}
	cpu, _ := news.num("cpuShares")
	mem, _ := news.num("memory")
	retries, _ := news.num("maxRetryCount")
	uc := container.UpdateConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(news.str("restart")), MaximumRetryCount: int(retries)},
		Resources: container.Resources{
			CPUShares:  int64(cpu),
			Memory:     int64(mem) * mib,
			CpusetCpus: news.str("cpuSet"),
		},
	}
	if ms, ok := news.num("memorySwap"); ok && ms != 0 {
		swap := int64(ms)
		if swap > 0 {
			swap *= mib
		}
		uc.Resources.MemorySwap = swap
	}
	if _, err := cli.ContainerUpdate(ctx, id, uc); err != nil {
		return fmt.Errorf("Unable to update a container: %v", err)
	}
	return nil
}

// ignorable mirrors containsIgnorableErrorMessage.
func ignorable(err error, msgs ...string) bool {
	for _, m := range msgs {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(m)) {
			return true
		}
	}
	return false
}

// deleteContainer mirrors resourceDockerContainerDelete: unless attach, stop with a timeout of
// destroyGraceSeconds (0, i.e. kill at once, when unset) — a failure, a missing container
// included, is an error; then force-remove (removeVolumes: anonymous volumes; rm: links) and
// wait until it is no longer running (removed, with rm).
func deleteContainer(ctx context.Context, cli *client.Client, id string, s spec) error {
	if !s.boolean("attach", false) {
		secs := 0
		if g, ok := s.num("destroyGraceSeconds"); ok && g > 0 {
			secs = int(g)
		}
		if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
			return fmt.Errorf("Error stopping container %s: %s", id, err)
		}
	}
	err := cli.ContainerRemove(ctx, id, container.RemoveOptions{
		RemoveVolumes: s.boolean("removeVolumes", true),
		RemoveLinks:   s.boolean("rm", false),
		Force:         true,
	})
	if err != nil && !ignorable(err, "No such container", "is already in progress") {
		return fmt.Errorf("Error deleting container %s: %s", id, err)
	}
	cond := container.WaitConditionNotRunning
	if s.boolean("rm", false) {
		cond = container.WaitConditionRemoved
	}
	okC, errC := cli.ContainerWait(ctx, id, cond)
	select {
	case <-okC:
	case err := <-errC:
		if err != nil && !ignorable(err, "No such container", "is already in progress") {
			return fmt.Errorf("Error waiting for container removal '%s': %s", id, err)
		}
	}
	return nil
}

// createVolume mirrors resourceDockerVolumeCreate (then Read).
func createVolume(ctx context.Context, cli *client.Client, s spec) (string, resource.PropertyMap, error) {
	opts := volume.CreateOptions{Name: s.str("name"), Driver: s.str("driver")}
	if l := s.labels(); len(l) > 0 {
		opts.Labels = l
	}
	if o := s.strMap("driverOpts"); len(o) > 0 {
		opts.DriverOpts = o
	}
	v, err := cli.VolumeCreate(ctx, opts)
	if err != nil {
		return "", nil, fmt.Errorf("Unable to create volume: %s", err)
	}
	return readVolume(ctx, cli, v.Name, s)
}

// readVolume mirrors resourceDockerVolumeRead: any inspect error, "not found" included, is an
// error (v2.23.0 does not drop a vanished volume from the state).
func readVolume(ctx context.Context, cli *client.Client, id string, s spec) (string, resource.PropertyMap, error) {
	v, err := cli.VolumeInspect(ctx, id)
	if err != nil {
		return id, nil, fmt.Errorf("Unable to inspect volume: %s", err)
	}
	outs := resource.NewPropertyMapFromMap(map[string]any(s))
	return id, mergeInto(outs, volumeReadback(v)), nil
}

// stateWait mirrors the Terraform SDK's StateChangeConf.WaitForStateContext (helper/resource
// state.go) for refresh functions that answer a pending or a target state: wait delay, refresh
// at once, then back off (doubling from 100 ms, at least minTimeout, at most 10 s) until a
// target state, an error, or timeout (counted from the start, delay included).
type stateWait struct {
	delay, minTimeout, timeout time.Duration
	pending, target            string
	refresh                    func() (string, error)
}

func (w stateWait) run(ctx context.Context) error {
	deadline := time.Now().Add(w.timeout)
	sleep := func(d time.Duration) error {
		if time.Now().Add(d).After(deadline) {
			d = time.Until(deadline)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(w.delay); err != nil {
		return err
	}
	wait := time.Duration(0)
	last := ""
	for {
		if time.Now().After(deadline) || (wait > 0 && !time.Now().Add(wait).Before(deadline)) {
			return fmt.Errorf("timeout while waiting for state to become '%s' (last state: '%s', timeout: %s)", w.target, last, w.timeout)
		}
		if err := sleep(wait); err != nil {
			return err
		}
		if wait == 0 {
			wait = 100 * time.Millisecond
		}
		st, err := w.refresh()
		if err != nil {
			return err
		}
		last = st
		switch st {
		case w.target:
			return nil
		case w.pending:
		default:
			return fmt.Errorf("unexpected state '%s', wanted target '%s'", st, w.target)
		}
		wait *= 2
		if wait < w.minTimeout {
			wait = w.minTimeout
		} else if wait > 10*time.Second {
			wait = 10 * time.Second
		}
	}
}

// volumeDeleteWait holds the timings of resourceDockerVolumeDelete.
var volumeDeleteWait = stateWait{delay: 2 * time.Second, minTimeout: 5 * time.Second, timeout: 30 * time.Second}

// deleteVolume mirrors resourceDockerVolumeDelete / resourceDockerVolumeRemoveRefreshFunc:
// VolumeRemove with force, "volume is in use" means try again, any other error fails.
func deleteVolume(ctx context.Context, cli *client.Client, name string) error {
	w := volumeDeleteWait
	w.pending, w.target = "in_use", "removed"
	w.refresh = func() (string, error) {
		if err := cli.VolumeRemove(ctx, name, true); err != nil {
			if ignorable(err, "volume is in use") {
				return "in_use", nil
			}
			return "", err
		}
		return "removed", nil
	}
	return w.run(ctx)
}

// networkCreateOptions renders a network spec as resourceDockerNetworkCreate does: driver,
// options, labels only when given (Docker picks "bridge"); internal, attachable, ingress and
// EnableIPv6 always sent (the v20.10 client upstream uses has plain bools); IPAM always, since
// ipam_driver defaults to "default". check_duplicate has no field left in this client: it asks
// daemons older than API 1.44 to check, and newer daemons always do.
func networkCreateOptions(s spec) network.CreateOptions {
	ipv6 := s.boolean("ipv6", false)
	opts := network.CreateOptions{
		Driver:     s.str("driver"),
		Internal:   s.boolean("internal", false),
		Attachable: s.boolean("attachable", false),
		Ingress:    s.boolean("ingress", false),
		EnableIPv6: &ipv6,
		IPAM:       &network.IPAM{Driver: s.str("ipamDriver")},
	}
	if l := s.labels(); len(l) > 0 {
		opts.Labels = l
	}
	if o := s.strMap("options"); len(o) > 0 {
		opts.Options = o
	}
	for _, c := range s.objs("ipamConfigs") {
		aux := c.strMap("auxAddress")
		if aux == nil {
			aux = map[string]string{}
		}
		opts.IPAM.Config = append(opts.IPAM.Config, network.IPAMConfig{
			Subnet: c.str("subnet"), IPRange: c.str("ipRange"), Gateway: c.str("gateway"), AuxAddress: aux,
		})
	}
	return opts
}

// createNetwork mirrors resourceDockerNetworkCreate: NetworkCreate, then Read.
func createNetwork(ctx context.Context, cli *client.Client, s spec) (string, resource.PropertyMap, error) {
	created, err := cli.NetworkCreate(ctx, s.str("name"), networkCreateOptions(s))
	if err != nil {
		return "", nil, fmt.Errorf("Unable to create network: %s", err)
	}
	return readNetwork(ctx, cli, created.ID, s)
}

// networkReadWait and networkDeleteWait hold the timings of resource_docker_network_funcs.go
// (networkReadRefresh*, networkRemoveRefresh*: delay 2 s, then every 5 s, up to 30 s).
var (
	networkReadWait   = stateWait{delay: 2 * time.Second, minTimeout: 5 * time.Second, timeout: 30 * time.Second}
	networkDeleteWait = stateWait{delay: 2 * time.Second, minTimeout: 5 * time.Second, timeout: 30 * time.Second}
)

// readNetwork mirrors resourceDockerNetworkRead / resourceDockerNetworkReadRefreshFunc: after
// the delay, inspect; a missing network is gone (empty ID, no error); an "overlay" scope without
// options is still pending; otherwise the state takes what networkReadback reads.
func readNetwork(ctx context.Context, cli *client.Client, id string, s spec) (string, resource.PropertyMap, error) {
	var info network.Inspect
	gone := false
	w := networkReadWait
	w.pending, w.target = "pending", "all_fields"
	w.refresh = func() (string, error) {
		n, err := cli.NetworkInspect(ctx, id, network.InspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			gone = true
			return "all_fields", nil // upstream's other target, "removed"
		case err != nil:
			return "", fmt.Errorf("Unable to inspect network %s: %s", id, err)
		case n.Scope == "overlay" && len(n.Options) == 0:
			return "pending", nil
		}
		info = n
		return "all_fields", nil
	}
	if err := w.run(ctx); err != nil {
		return id, nil, err
	}
	if gone {
		return "", nil, nil
	}
	outs := resource.NewPropertyMapFromMap(map[string]any(s))
	return info.ID, mergeInto(outs, networkReadback(info)), nil
}

// deleteNetwork mirrors resourceDockerNetworkDelete / resourceDockerNetworkRemoveRefreshFunc:
// a missing network is removed; NetworkRemove failing with "has active endpoints" (containers
// still attached) is tried again; any other error fails.
func deleteNetwork(ctx context.Context, cli *client.Client, id string) error {
	w := networkDeleteWait
	w.pending, w.target = "pending", "removed"
	w.refresh = func() (string, error) {
		if _, err := cli.NetworkInspect(ctx, id, network.InspectOptions{}); cerrdefs.IsNotFound(err) {
			return "removed", nil
		} else if err != nil {
			return "", fmt.Errorf("Unable to inspect network %s: %s", id, err)
		}
		if err := cli.NetworkRemove(ctx, id); err != nil {
			if ignorable(err, "has active endpoints") {
				return "pending", nil
			}
			return "", err
		}
		return "removed", nil
	}
	return w.run(ctx)
}

// searchLocalImage mirrors fetchLocalImages + searchLocalImages: inspect the name, and accept
// the result only when that ID is in the (top-level) image list; nil when not found.
func searchLocalImage(ctx context.Context, cli *client.Client, name string) (*image.Summary, error) {
	list, err := cli.ImageList(ctx, image.ListOptions{All: false})
	if err != nil {
		return nil, fmt.Errorf("unable to list Docker images: %w", err)
	}
	info, err := cli.ImageInspect(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("unable to inspect image %s: %w", name, err)
	}
	for i := range list {
		if list[i].ID == info.ID {
			return &list[i], nil
		}
	}
	return nil, nil
}

// findImage mirrors findImage: the local image when there is one, else a pull (no platform,
// empty registry auth), then a second search.
func findImage(ctx context.Context, cli *client.Client, name string) (*image.Summary, error) {
	if name == "" {
		return nil, errors.New("empty image name is not allowed")
	}
	found, err := searchLocalImage(ctx, cli, name)
	if err != nil {
		return nil, fmt.Errorf("findImage1: error looking up local image %q: %w", name, err)
	}
	if found != nil {
		return found, nil
	}
	streamErr, err := pullImage(ctx, cli, name)
	if err != nil {
		return nil, fmt.Errorf("unable to pull image %s: error pulling image %s: %w", name, name, err)
	}
	if found, err = searchLocalImage(ctx, cli, name); err != nil {
		return nil, fmt.Errorf("findImage2: error looking up local image %q: %w", name, err)
	}
	if found == nil {
		msg := fmt.Sprintf("unable to find or pull image %s", name)
		if streamErr != "" { // upstream discards the pull output; kept here for the reader
			msg += " (the pull said: " + streamErr + ")"
		}
		return nil, errors.New(msg)
	}
	return found, nil
}

// pullImage pulls and drains the progress stream; like upstream it does not fail on an error
// inside the stream, but returns its text.
func pullImage(ctx context.Context, cli *client.Client, name string) (string, error) {
	auth, _ := json.Marshal(struct{}{})
	rc, err := cli.ImagePull(ctx, name, image.PullOptions{RegistryAuth: base64.URLEncoding.EncodeToString(auth)})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	last := ""
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			return last, nil
		}
		if msg.Error != "" {
			last = msg.Error
		}
	}
}

// createImage mirrors resourceDockerImageCreate (then Read): the ID is the image ID followed by
// the name.
func createImage(ctx context.Context, cli *client.Client, s spec) (string, resource.PropertyMap, error) {
	found, err := findImage(ctx, cli, s.str("name"))
	if err != nil {
		return "", nil, fmt.Errorf("Unable to read Docker image into resource: %s "+
			"(on an offline site load the image first, e.g. `docker save IMAGE | ssh HOST docker load`)", err)
	}
	id := found.ID + s.str("name")
	return readImage(ctx, cli, id, s)
}

// readImage mirrors resourceDockerImageRead: the image is looked up by name; missing, it is
// gone.
func readImage(ctx context.Context, cli *client.Client, id string, s spec) (string, resource.PropertyMap, error) {
	name := s.str("name")
	found, err := searchLocalImage(ctx, cli, name)
	if err != nil {
		return id, nil, fmt.Errorf("resourceDockerImageRead: error looking up local image %q: %s", name, err)
	}
	if found == nil {
		return "", nil, nil
	}
	outs := resource.NewPropertyMapFromMap(map[string]any(s))
	return found.ID + name, mergeInto(outs, imageReadback(name, found.ID, found.RepoDigests)), nil
}

// updateImage mirrors resourceDockerImageUpdate: find (maybe pull) the image again, then Read.
func updateImage(ctx context.Context, cli *client.Client, id string, s spec) (string, resource.PropertyMap, error) {
	if _, err := findImage(ctx, cli, s.str("name")); err != nil {
		return id, nil, fmt.Errorf("Unable to read Docker image into resource: %s", err)
	}
	return readImage(ctx, cli, id, s)
}

// deleteImage mirrors resourceDockerImageDelete/removeImage: nothing with keepLocally;
// otherwise, when the name still resolves to a listed image, remove it by name (force when
// forceRemove; parents are not pruned).
func deleteImage(ctx context.Context, cli *client.Client, s spec) error {
	if s.boolean("keepLocally", false) {
		return nil
	}
	name := s.str("name")
	if name == "" {
		return errors.New("Unable to remove Docker image: empty image name is not allowed")
	}
	found, err := searchLocalImage(ctx, cli, name)
	if err != nil {
		return fmt.Errorf("Unable to remove Docker image: removeImage: error looking up local image %q: %w", name, err)
	}
	if found == nil {
		return nil
	}
	if _, err := cli.ImageRemove(ctx, name, image.RemoveOptions{Force: s.boolean("forceRemove", false), PruneChildren: false}); err != nil {
		return fmt.Errorf("Unable to remove Docker image: %s", err)
	}
	return nil
}
