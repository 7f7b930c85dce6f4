package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil/rpcerror"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func TestContainerConfig(t *testing.T) {
	s := spec{
		"name": "c", "image": "i", "user": "10001:10001", "readOnly": true, "restart": "always",
		"memory": 512.0, "memorySwap": 512.0, "cpuShares": 1024.0, "cpuSet": "0",
		"capabilities": map[string]any{"drops": []any{"ALL"}},
		"tmpfs":        map[string]any{"/tmp": "rw,size=16m"},
		"volumes": []any{map[string]any{"volumeName": "keys", "containerPath": "/run/k", "readOnly": true},
			map[string]any{"volumeName": "models", "containerPath": "/m"}},
		"ports":       []any{map[string]any{"internal": 8080.0, "external": 18080.0, "ip": "127.0.0.1", "protocol": "tcp"}},
		"healthcheck": map[string]any{"tests": []any{"CMD-SHELL", "true"}, "interval": "10s", "retries": 3.0},
		"labels":      []any{map[string]any{"label": "a", "value": "b"}},
		"stopTimeout": 25.0, "stopSignal": "SIGTERM",
	}
	cfg, host, err := containerConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if host.Memory != 512*mib || host.MemorySwap != 512*mib || host.CPUShares != 1024 || !host.ReadonlyRootfs {
		t.Errorf("host config %+v", host)
	}
	// volumeSetToDockerVolumes: "src:path:ro|rw" binds plus Config.Volumes entries
	if !reflect.DeepEqual(host.Binds, []string{"keys:/run/k:ro", "models:/m:rw"}) || len(cfg.Volumes) != 2 {
		t.Errorf("binds %v volumes %v", host.Binds, cfg.Volumes)
	}
	b := host.PortBindings["8080/tcp"]
	if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "18080" {
		t.Errorf("port bindings %v", host.PortBindings)
	}
	if cfg.Healthcheck.Interval.Seconds() != 10 || cfg.Healthcheck.Retries != 3 || cfg.Labels["a"] != "b" || *cfg.StopTimeout != 25 {
		t.Errorf("config %+v", cfg)
	}
	if host.Init == nil || *host.Init || host.LogConfig.Type != "" {
		t.Errorf("init must be sent as false, log driver left to the daemon: %+v", host)
	}
	_, host, _ = containerConfig(spec{"image": "i", "memorySwap": -1.0})
	if host.MemorySwap != -1 {
		t.Errorf("memory_swap -1 (unlimited) not passed through: %d", host.MemorySwap)
	}
	if _, _, err := containerConfig(spec{"image": "i", "command": []any{"a", ""}}); err == nil {
		t.Error("empty command value accepted")
	}
}

// uploads: one tar per file, the entry named by the full path, copied to "/" of the container
// (resourceDockerContainerCreate: tar.Header{Name: file, Mode, Size, ModTime}, dstPath "/").
func TestUploadTarLayoutToRoot(t *testing.T) {
	if uploadDestination != "/" {
		t.Fatalf("uploads must be copied to /, not %q", uploadDestination)
	}
	before := time.Now().Add(-time.Second)
	body, err := uploadTar(spec{"file": "/run/secrets/tizi/api-key-0", "content": "k1", "executable": false})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(body)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(tr)
	if h.Name != "/run/secrets/tizi/api-key-0" || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 ||
		h.Uname != "" || h.Gname != "" || h.Typeflag != tar.TypeReg || string(data) != "k1" || h.ModTime.Before(before) {
		t.Errorf("header %+v data %q", h, data)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("more than one entry: %v", err)
	}
	body, _ = uploadTar(spec{"file": "/x/run.sh", "contentBase64": "ZWNobw==", "executable": true})
	tr = tar.NewReader(body)
	h, _ = tr.Next()
	data, _ = io.ReadAll(tr)
	if h.Mode != 0o744 || string(data) != "echo" {
		t.Errorf("executable upload %+v %q", h, data)
	}
}

func TestDemux(t *testing.T) {
	raw := append([]byte{1, 0, 0, 0, 0, 0, 0, 3}, []byte("abc")...)
	raw = append(raw, append([]byte{2, 0, 0, 0, 0, 0, 0, 2}, []byte("de")...)...)
	if got := demux(raw); got != "abcde" {
		t.Errorf("demux %q", got)
	}
}

// Read writes container.Image (the sha256 ID) into `image`, and the other attributes
// resourceDockerContainerRead sets.
func TestContainerReadbackImageID(t *testing.T) {
	stop := 20
	yes := true
	info := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: "abc", Name: "/tizi-c", Image: "sha256:0123",
			State: &container.State{Running: false, ExitCode: 3},
			HostConfig: &container.HostConfig{
				ReadonlyRootfs: true,
				Resources:      container.Resources{Memory: 512 * mib, MemorySwap: 1024 * mib, CPUShares: 512, CpusetCpus: "0"},
				RestartPolicy:  container.RestartPolicy{Name: "always"}, CapDrop: []string{"ALL"},
				Tmpfs: map[string]string{"/tmp": "rw"}, LogConfig: container.LogConfig{Type: "json-file"},
				NetworkMode: "host", SecurityOpt: []string{"no-new-privileges"}, Init: &yes,
			},
		},
		Config: &container.Config{
			Hostname: "abc", User: "10001:10001", Entrypoint: []string{"/tool"}, Cmd: []string{"sleep"},
			StopTimeout: &stop, StopSignal: "SIGTERM",
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, StartPeriod: 60 * time.Second, Retries: 3},
		},
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}}},
			Networks:            map[string]*network.EndpointSettings{"bridge": {IPAddress: "172.17.0.2", IPPrefixLen: 16}},
		},
	}
	rb := containerReadback(info)
	want := map[string]any{
		"image": "sha256:0123", "name": "tizi-c", "readOnly": true, "memory": 512.0, "memorySwap": 1024.0,
		"cpuShares": 512.0, "cpuSet": "0", "restart": "always", "exitCode": 3.0, "user": "10001:10001",
		"stopTimeout": 20.0, "networkMode": "host", "logDriver": "json-file", "init": true, "ipAddress": "172.17.0.2",
	}
	for k, v := range want {
		if got := rb[resource.PropertyKey(k)].Mappable(); !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	hc := rb["healthcheck"].ObjectValue()
	if hc["interval"].StringValue() != "5s" || hc["startPeriod"].StringValue() != "1m0s" || hc["timeout"].StringValue() != "0s" {
		t.Errorf("healthcheck durations are Duration.String(): %v", hc)
	}
	if got := rb["capabilities"].ObjectValue()["drops"].Mappable(); !reflect.DeepEqual(got, []any{"ALL"}) {
		t.Errorf("capabilities %v", got)
	}
	if p := rb["ports"].ArrayValue(); len(p) != 1 || p[0].ObjectValue()["external"].NumberValue() != 8080 {
		t.Errorf("ports %v", p)
	}
	for _, k := range []string{"envs", "labels", "volumes", "uploads", "mustRun", "start", "destroyGraceSeconds"} {
		if _, ok := rb[resource.PropertyKey(k)]; ok {
			t.Errorf("%s is not set by upstream Read", k)
		}
	}
	info.State.Running = true
	if _, ok := containerReadback(info)["exitCode"]; ok {
		t.Error("exit code set for a running container")
	}
}

func TestVolumeAndImageReadback(t *testing.T) {
	rb := volumeReadback(volume.Volume{Name: "v", Driver: "local", Mountpoint: "/m", Labels: map[string]string{"b": "2", "a": "1"}})
	if rb["labels"].ArrayValue()[0].ObjectValue()["label"].StringValue() != "a" || rb["mountpoint"].StringValue() != "/m" {
		t.Errorf("volume readback %v", rb)
	}
	img := imageReadback("tizi/app:1", "sha256:ff", []string{"reg:5000/tizi/app@sha256:1", "tizi/app@sha256:2"})
	if img["imageId"].StringValue() != "sha256:ff" || img["latest"].StringValue() != "sha256:ff" ||
		img["repoDigest"].StringValue() != "tizi/app@sha256:2" {
		t.Errorf("image readback %v", img)
	}
	for name, want := range map[string]string{"x:1": "", "tizi/app:1": "reg@1"} {
		var ds []string
		if want != "" {
			ds = []string{"reg@1"}
		}
		if got := determineRepoDigest(name, ds); got != want {
			t.Errorf("determineRepoDigest(%s) = %q", name, got)
		}
	}
	if got := determineRepoDigest("other:1", []string{"a@1", "b@2"}); got != "a@1" {
		t.Errorf("fallback digest %q", got)
	}
}

// resourceDockerNetworkCreate: driver, options, labels only when given; the bools and IPAM
// (ipam_driver's Default) always; ipamConfigs with an aux address map each.
func TestNetworkCreateOptions(t *testing.T) {
	s := plain(checkResource(tokNetwork, testURN, []byte("seed"), nil, props(map[string]any{"name": "n"})).inputs)
	o := networkCreateOptions(s)
	if o.Driver != "" || o.Options != nil || o.Labels != nil || o.Internal || o.Attachable ||
		o.EnableIPv6 == nil || *o.EnableIPv6 || o.IPAM == nil || o.IPAM.Driver != "default" || len(o.IPAM.Config) != 0 {
		t.Errorf("defaults: %+v", o)
	}
	o = networkCreateOptions(spec{"name": "n", "driver": "bridge", "internal": true, "attachable": true, "ipv6": true,
		"ipamDriver": "default", "options": map[string]any{"com.docker.network.bridge.name": "br-n"},
		"labels":      []any{map[string]any{"label": "tizi.site", "value": "s1"}},
		"ipamConfigs": []any{map[string]any{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}}})
	if o.Driver != "bridge" || !o.Internal || !o.Attachable || !*o.EnableIPv6 || o.Labels["tizi.site"] != "s1" ||
		o.Options["com.docker.network.bridge.name"] != "br-n" || len(o.IPAM.Config) != 1 ||
		o.IPAM.Config[0].Subnet != "10.9.0.0/24" || o.IPAM.Config[0].Gateway != "10.9.0.1" || o.IPAM.Config[0].AuxAddress == nil {
		t.Errorf("given values: %+v", o)
	}
}

// resourceDockerNetworkReadRefreshFunc: what Read sets from NetworkInspect.
func TestNetworkReadback(t *testing.T) {
	rb := networkReadback(network.Inspect{Name: "tizi-net", ID: "nid", Driver: "bridge", Scope: "local", Internal: true,
		Labels:  map[string]string{"b": "2", "a": "1"},
		Options: map[string]string{"com.docker.network.bridge.name": "br-x"},
		IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: "172.18.0.0/16", Gateway: "172.18.0.1"}}}})
	want := map[string]any{
		"name": "tizi-net", "driver": "bridge", "scope": "local", "internal": true, "attachable": false, "ingress": false,
		"ipv6": false, "ipamDriver": "default", "options": map[string]any{"com.docker.network.bridge.name": "br-x"},
		"labels":      []any{map[string]any{"label": "a", "value": "1"}, map[string]any{"label": "b", "value": "2"}},
		"ipamConfigs": []any{map[string]any{"subnet": "172.18.0.0/16", "gateway": "172.18.0.1"}},
	}
	if got := rb.Mappable(); !reflect.DeepEqual(got, want) {
		t.Errorf("network readback\n got %v\nwant %v", got, want)
	}
}

// resourceDockerContainerRead with must_run: the refresh function and the check after it.
func TestMustRunVerdicts(t *testing.T) {
	created := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name             string
		running, mustRun bool
		finished         string
		created          time.Time
		want             mustRunVerdict
	}{
		{"running", true, true, "", time.Time{}, verdictRead},
		{"never started, mustRun false", false, false, "0001-01-01T00:00:00Z", time.Time{}, verdictRead},
		{"stopped, mustRun false", false, false, "2025-01-01T12:00:05Z", created, verdictRead},
		{"refresh in a fresh process", false, true, "2025-01-01T12:00:05Z", time.Time{}, verdictDeleteGone},
		{"exited after this process started one", false, true, "2025-01-01T12:00:05Z", created, verdictDeleteExited},
		{"never started, after this process started one", false, true, "0001-01-01T00:00:00Z", created, verdictDeleteNotRunning},
		{"unparsable finish time", false, true, "yesterday", created, verdictError},
	}
	for _, c := range cases {
		got, _ := mustRunCheck(c.running, c.mustRun, c.finished, c.created)
		if got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

func TestStateWait(t *testing.T) {
	n := 0
	w := stateWait{delay: 10 * time.Millisecond, minTimeout: 20 * time.Millisecond, timeout: 2 * time.Second,
		pending: "in_use", target: "removed", refresh: func() (string, error) {
			n++
			if n < 3 {
				return "in_use", nil
			}
			return "removed", nil
		}}
	if err := w.run(context.Background()); err != nil || n != 3 {
		t.Errorf("wait: %v after %d refreshes", err, n)
	}
	w.timeout = 300 * time.Millisecond
	w.refresh = func() (string, error) { return "in_use", nil }
	err := w.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timeout while waiting for state to become 'removed' (last state: 'in_use'") {
		t.Errorf("timeout error %v", err)
	}
	w.refresh = func() (string, error) { return "", errors.New("boom") }
	if err := w.run(context.Background()); err == nil || err.Error() != "boom" {
		t.Errorf("refresh error not returned at once: %v", err)
	}
	if volumeDeleteWait.delay != 2*time.Second || volumeDeleteWait.minTimeout != 5*time.Second || volumeDeleteWait.timeout != 30*time.Second {
		t.Errorf("volume delete timings %+v", volumeDeleteWait)
	}
	for _, w := range []stateWait{networkReadWait, networkDeleteWait} {
		if w.delay != 2*time.Second || w.minTimeout != 5*time.Second || w.timeout != 30*time.Second {
			t.Errorf("network read/delete timings %+v", w)
		}
	}
}

// A partial create carries the container's ID and state in an ErrorResourceInitFailed detail
// (the bridge's initializationError), so the engine records the container with the error.
func TestInitErrorCarriesID(t *testing.T) {
	err := initError("cid", props(map[string]any{"name": "c", defaultsKey: []any{}}), errors.New("Unable to start container: x"))
	rerr, ok := rpcerror.FromError(err)
	if !ok || !strings.Contains(rerr.Message(), "Unable to start container") {
		t.Fatalf("not an rpc error: %v", err)
	}
	var detail *pulumirpc.ErrorResourceInitFailed
	for _, d := range rerr.Details() {
		if f, ok := d.(*pulumirpc.ErrorResourceInitFailed); ok {
			detail = f
		}
	}
	if detail == nil || detail.GetId() != "cid" || detail.GetProperties().GetFields()["name"].GetStringValue() != "c" ||
		len(detail.GetReasons()) != 1 {
		t.Fatalf("init error detail %+v", detail)
	}
	if _, ok := detail.GetProperties().GetFields()[defaultsKey]; ok {
		t.Error("__defaults leaked into the state")
	}
}

// The gRPC Diff answers deleteBeforeReplace for a replaced Container (pulumi-docker v4.0.0
// resources.go DeleteBeforeReplace: true), compared with the old outputs (the state).
func TestGRPCDiffDeleteBeforeReplace(t *testing.T) {
	p := newProvider()
	olds, _ := marshal(props(containerState()))
	oldIns := containerInputs()
	oldIns["image"] = "tizi/app:1.0" // the engine's old inputs: the name; the state holds the ID
	oldInputs, _ := marshal(props(oldIns))
	news, _ := marshal(props(oldIns))
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: testURN, Type: tokContainer, Id: "cid", Olds: olds, OldInputs: oldInputs, News: news})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || !resp.GetDeleteBeforeReplace() ||
		!reflect.DeepEqual(resp.GetReplaces(), []string{"image"}) ||
		resp.GetDetailedDiff()["image"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Errorf("diff %+v", resp)
	}
	in := containerInputs()
	in["memory"] = 1024.0
	news, _ = marshal(props(in))
	resp, _ = p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: testURN, Type: tokContainer, Olds: olds, News: news})
	if resp.GetDeleteBeforeReplace() || len(resp.GetReplaces()) != 0 || resp.GetDetailedDiff()["memory"].GetKind() != pulumirpc.PropertyDiff_UPDATE {
		t.Errorf("in-place diff %+v", resp)
	}
}
