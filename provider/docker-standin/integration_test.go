package main

// Integration tests against a real Docker engine: set TIZI_DOCKER_TESTS=1 (engine at
// $DOCKER_HOST or unix:///var/run/docker.sock). They build a tiny static test image from
// testdata/tool, so no registry is needed.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil/rpcerror"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const testImageRef = "tizi-standin-test:1"

var (
	testImageOnce sync.Once
	testImageID   string
	testImageErr  error
)

type harness struct {
	t   *testing.T
	p   *dockerProvider
	cli *client.Client
	ctx context.Context
	tag string // unique per test: container and volume names start with it
}

func dockerHarness(t *testing.T) *harness {
	t.Helper()
	if os.Getenv("TIZI_DOCKER_TESTS") != "1" {
		t.Skip("integration test: set TIZI_DOCKER_TESTS=1 to run it against the Docker engine at $DOCKER_HOST or unix:///var/run/docker.sock")
	}
	p := newProvider()
	cli, err := p.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("TIZI_DOCKER_TESTS=1 but no Docker engine answers: %v", err)
	}
	testImageOnce.Do(func() { testImageID, testImageErr = buildTestImage(ctx, cli) })
	if testImageErr != nil {
		t.Fatalf("building the test image: %v", testImageErr)
	}
	h := &harness{t: t, p: p, cli: cli, ctx: ctx,
		tag: fmt.Sprintf("tizi-standin-test-%d", time.Now().UnixNano()%1_000_000_000)}
	t.Cleanup(h.cleanup)
	return h
}

// buildTestImage compiles testdata/tool statically and imports it as the only file of an image.
func buildTestImage(ctx context.Context, cli *client.Client) (string, error) {
	if info, err := cli.ImageInspect(ctx, testImageRef); err == nil {
		return info.ID, nil
	}
	dir, err := os.MkdirTemp("", "tizi-standin-tool")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tool")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/tool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "tool", Mode: 0o755, Size: int64(len(data)), ModTime: time.Now()})
	tw.Write(data)
	tw.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, testImageRef,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/tool"]`, `CMD ["sleep"]`}})
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	info, err := cli.ImageInspect(ctx, testImageRef)
	return info.ID, err
}

func (h *harness) cleanup() {
	ctx := context.Background()
	list, _ := h.cli.ContainerList(ctx, container.ListOptions{All: true})
	for _, c := range list {
		for _, n := range c.Names {
			if strings.HasPrefix(strings.TrimPrefix(n, "/"), h.tag) {
				h.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
	}
	nets, _ := h.cli.NetworkList(ctx, network.ListOptions{})
	for _, n := range nets {
		if strings.HasPrefix(n.Name, h.tag) {
			h.cli.NetworkRemove(ctx, n.ID)
		}
	}
	vols, _ := h.cli.VolumeList(ctx, volumeListAll())
	for _, v := range vols.Volumes {
		if strings.HasPrefix(v.Name, h.tag) {
			h.cli.VolumeRemove(ctx, v.Name, true)
		}
	}
}

func urnOf(typ, name string) string {
	return "urn:pulumi:test::tizi::" + typ + "::" + name
}

// create runs Check then Create over the provider's gRPC methods, as the engine does.
func (h *harness) create(typ, name string, inputs map[string]any) (string, resource.PropertyMap, error) {
	h.t.Helper()
	news, _ := marshal(props(inputs))
	chk, err := h.p.Check(h.ctx, &pulumirpc.CheckRequest{Urn: urnOf(typ, name), Type: typ, News: news, RandomSeed: []byte(name)})
	if err != nil || len(chk.GetFailures()) > 0 {
		h.t.Fatalf("check: %v %v", err, chk.GetFailures())
	}
	resp, err := h.p.Create(h.ctx, &pulumirpc.CreateRequest{Urn: urnOf(typ, name), Type: typ, Properties: chk.GetInputs()})
	if err != nil {
		return "", nil, err
	}
	outs, _ := unmarshal(resp.GetProperties())
	return resp.GetId(), outs, nil
}

func (h *harness) read(typ, name, id string, state resource.PropertyMap) (string, resource.PropertyMap, error) {
	st, _ := marshal(state)
	resp, err := h.p.Read(h.ctx, &pulumirpc.ReadRequest{Urn: urnOf(typ, name), Type: typ, Id: id, Properties: st, Inputs: st})
	if err != nil {
		return "", nil, err
	}
	outs, _ := unmarshal(resp.GetProperties())
	return resp.GetId(), outs, nil
}

func (h *harness) delete(typ, name, id string, state resource.PropertyMap) error {
	st, _ := marshal(state)
	_, err := h.p.Delete(h.ctx, &pulumirpc.DeleteRequest{Urn: urnOf(typ, name), Type: typ, Id: id, Properties: st})
	return err
}

// diff runs Check on the program's inputs, then Diff against the state, as the engine does.
func (h *harness) diff(typ, name, id string, state resource.PropertyMap, inputs map[string]any) *pulumirpc.DiffResponse {
	h.t.Helper()
	olds, _ := marshal(state)
	news, _ := marshal(checkResource(typ, urnOf(typ, name), []byte(name), nil, props(inputs)).inputs)
	resp, err := h.p.Diff(h.ctx, &pulumirpc.DiffRequest{Urn: urnOf(typ, name), Type: typ, Id: id, Olds: olds, News: news})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// initFailed returns the ErrorResourceInitFailed detail of a partial create, or nil.
func initFailed(err error) *pulumirpc.ErrorResourceInitFailed {
	rerr, ok := rpcerror.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range rerr.Details() {
		if f, ok := d.(*pulumirpc.ErrorResourceInitFailed); ok {
			return f
		}
	}
	return nil
}

func (h *harness) containerStatus(id string) string {
	info, err := h.cli.ContainerInspect(h.ctx, id)
	if cerrdefs.IsNotFound(err) {
		return "gone"
	} else if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Status
}

// readFile copies one file out of a container (created or running) and returns its tar header
// and content.
func (h *harness) readFile(id, path string) (*tar.Header, string) {
	h.t.Helper()
	rc, _, err := h.cli.CopyFromContainer(h.ctx, id, path)
	if err != nil {
		h.t.Fatalf("copy %s from %s: %v", path, id, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	return hdr, string(b)
}

// The key-writer pattern: a never-started container (start=false, mustRun=false) with a
// writable root takes uploads into a mounted named volume; a read-only container that mounts
// the volume sees them. Read keeps the never-started container, and stores the image ID.
func TestDockerKeyWriterUploadsIntoVolume(t *testing.T) {
	h := dockerHarness(t)
	volName := h.tag + "-keys"
	volID, volOuts, err := h.create(tokVolume, "keys", map[string]any{"name": volName})
	if err != nil || volID != volName {
		t.Fatalf("volume: %q %v", volID, err)
	}
	id, outs, err := h.create(tokContainer, "writer", map[string]any{
		"name": h.tag + "-writer", "image": testImageID, "start": false, "mustRun": false, "readOnly": false,
		"networkMode": "none", "entrypoints": []any{"/tool", "true"},
		"volumes": []any{map[string]any{"volumeName": volName, "containerPath": "/run/secrets/tizi"}},
		"uploads": []any{map[string]any{"file": "/run/secrets/tizi/api-key-0", "content": "k1"},
			map[string]any{"file": "/run/secrets/tizi/run.sh", "content": "#!/bin/sh", "executable": true}},
	})
	if err != nil {
		t.Fatalf("writer create: %v", err)
	}
	if st := h.containerStatus(id); st != "created" {
		t.Errorf("start=false: status %s", st)
	}
	if outs["image"].StringValue() != testImageID || outs["exitCode"].NumberValue() != 0 {
		t.Errorf("writer outputs image=%v exitCode=%v", outs["image"], outs["exitCode"])
	}
	// a refresh keeps a never-started container when mustRun is false
	rid, routs, err := h.read(tokContainer, "writer", id, outs)
	if err != nil || rid != id || routs["mustRun"].BoolValue() {
		t.Fatalf("read of the never-started writer: %q %v %v", rid, routs, err)
	}
	// the serving side: a read-only container mounting the volume read-only
	reader, _, err := h.create(tokContainer, "reader", map[string]any{
		"name": h.tag + "-reader", "image": testImageID, "readOnly": true, "networkMode": "none",
		"volumes": []any{map[string]any{"volumeName": volName, "containerPath": "/keys", "readOnly": true}},
	})
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	hdr, content := h.readFile(reader, "/keys/api-key-0")
	if content != "k1" || hdr.Mode&0o777 != 0o644 || hdr.Uid != 0 || hdr.Gid != 0 {
		t.Errorf("key file in the volume: %q mode %o uid %d gid %d", content, hdr.Mode, hdr.Uid, hdr.Gid)
	}
	if hdr, _ := h.readFile(reader, "/keys/run.sh"); hdr.Mode&0o777 != 0o744 {
		t.Errorf("executable upload mode %o", hdr.Mode)
	}
	for _, c := range []struct {
		name, id string
		outs     resource.PropertyMap
	}{{"writer", id, outs}} {
		if err := h.delete(tokContainer, c.name, c.id, c.outs); err != nil {
			t.Errorf("delete %s: %v", c.name, err)
		}
	}
	h.cli.ContainerRemove(h.ctx, reader, container.RemoveOptions{Force: true})
	if err := h.delete(tokVolume, "keys", volID, volOuts); err != nil {
		t.Errorf("volume delete: %v", err)
	}
	if _, err := h.cli.VolumeInspect(h.ctx, volName); !cerrdefs.IsNotFound(err) {
		t.Errorf("volume still there: %v", err)
	}
}

// uploads go to "/" of the container: Docker refuses that on a read-only root filesystem even
// for a path inside a mounted volume; the container stays, recorded as a partial create.
func TestDockerUploadToReadOnlyRootfsIsPartialCreate(t *testing.T) {
	h := dockerHarness(t)
	volName := h.tag + "-keys"
	if _, _, err := h.create(tokVolume, "keys", map[string]any{"name": volName}); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.create(tokContainer, "ro", map[string]any{
		"name": h.tag + "-ro", "image": testImageID, "readOnly": true, "networkMode": "none",
		"volumes": []any{map[string]any{"volumeName": volName, "containerPath": "/run/secrets/tizi"}},
		"uploads": []any{map[string]any{"file": "/run/secrets/tizi/api-key-0", "content": "k1"}},
	})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("upload to a read-only rootfs: %v", err)
	}
	t.Logf("Docker says: %v", err)
	detail := initFailed(err)
	if detail == nil || detail.GetId() == "" {
		t.Fatalf("no partial-create detail: %v", err)
	}
	if st := h.containerStatus(detail.GetId()); st != "created" {
		t.Errorf("the container should be kept (created), is %s", st)
	}
}

// Read stores the image ID: the same program (image by name) then differs and replaces,
// deleting first; passing the ID does not.
func TestDockerReadStoresImageID(t *testing.T) {
	h := dockerHarness(t)
	inputs := map[string]any{"name": h.tag + "-svc", "image": testImageRef, "networkMode": "none", "memory": 64.0}
	id, outs, err := h.create(tokContainer, "svc", inputs)
	if err != nil {
		t.Fatal(err)
	}
	if outs["image"].StringValue() != testImageID {
		t.Fatalf("image output %v, want the ID %s", outs["image"], testImageID)
	}
	diff := func(in map[string]any) *pulumirpc.DiffResponse {
		olds, _ := marshal(outs)
		news, _ := marshal(checked(in))
		resp, err := h.p.Diff(h.ctx, &pulumirpc.DiffRequest{Urn: urnOf(tokContainer, "svc"), Type: tokContainer, Id: id, Olds: olds, News: news})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if d := diff(inputs); len(d.GetReplaces()) != 1 || d.GetReplaces()[0] != "image" || !d.GetDeleteBeforeReplace() {
		t.Errorf("image by name: %+v", d)
	}
	inputs["image"] = testImageID
	// memory without memorySwap: Docker sets the swap limit to twice the memory, Read stores
	// it, and memorySwap (not Computed) then differs on every update, in place
	if d := diff(inputs); len(d.GetDiffs()) != 1 || d.GetDiffs()[0] != "memorySwap" || len(d.GetReplaces()) != 0 {
		t.Errorf("memory without memorySwap: %+v", d)
	}
	inputs["memorySwap"] = 128.0
	if d := diff(inputs); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("image by ID against the read state: %+v", d)
	}
	if err := h.delete(tokContainer, "svc", id, outs); err != nil || h.containerStatus(id) != "gone" {
		t.Errorf("delete: %v", err)
	}
}

// Update sends restart/memory/... to Docker in place; other in-place attributes only change
// the state.
func TestDockerUpdateInPlace(t *testing.T) {
	h := dockerHarness(t)
	inputs := map[string]any{"name": h.tag + "-svc", "image": testImageID, "networkMode": "none", "memory": 64.0,
		"memorySwap": 64.0, "restart": "no",
		"healthcheck": map[string]any{"tests": []any{"CMD", "/tool", "true"}, "interval": "1s"}}
	id, outs, err := h.create(tokContainer, "svc", inputs)
	if err != nil {
		t.Fatal(err)
	}
	inputs["memory"], inputs["memorySwap"], inputs["restart"] = 128.0, 128.0, "unless-stopped"
	inputs["healthcheck"] = map[string]any{"tests": []any{"CMD", "/tool", "true"}, "interval": "2s"}
	olds, _ := marshal(outs)
	news, _ := marshal(checked(inputs))
	resp, err := h.p.Update(h.ctx, &pulumirpc.UpdateRequest{Urn: urnOf(tokContainer, "svc"), Type: tokContainer, Id: id, Olds: olds, News: news})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := h.cli.ContainerInspect(h.ctx, id)
	if info.HostConfig.Memory != 128*mib || info.HostConfig.RestartPolicy.Name != "unless-stopped" {
		t.Errorf("not applied in place: memory %d restart %s", info.HostConfig.Memory, info.HostConfig.RestartPolicy.Name)
	}
	if info.Config.Healthcheck.Interval != time.Second {
		t.Errorf("healthcheck changed on Docker (upstream only records it): %v", info.Config.Healthcheck.Interval)
	}
	newOuts, _ := unmarshal(resp.GetProperties())
	if newOuts["healthcheck"].ObjectValue()["interval"].StringValue() != "2s" || newOuts["memory"].NumberValue() != 128 {
		t.Errorf("state after update %v", newOuts)
	}
}

// After the container exists, a failing start or wait keeps it and reports a partial create.
func TestDockerPartialCreateKeepsContainer(t *testing.T) {
	h := dockerHarness(t)
	_, _, err := h.create(tokContainer, "unhealthy", map[string]any{
		"name": h.tag + "-unhealthy", "image": testImageID, "networkMode": "none", "wait": true, "waitTimeout": 4.0,
		"healthcheck": map[string]any{"tests": []any{"CMD", "/tool", "fail"}, "interval": "1s", "retries": 1.0},
	})
	d := initFailed(err)
	if err == nil || !strings.Contains(err.Error(), "container failed to be in healthy state") || d == nil || d.GetId() == "" {
		t.Fatalf("wait timeout: %v", err)
	}
	if st := h.containerStatus(d.GetId()); st != "running" {
		t.Errorf("unhealthy container should be kept running, is %s", st)
	}
	_, _, err = h.create(tokContainer, "nostart", map[string]any{
		"name": h.tag + "-nostart", "image": testImageID, "networkMode": "none", "entrypoints": []any{"/missing"},
	})
	d = initFailed(err)
	if err == nil || !strings.Contains(err.Error(), "Unable to start container") || d == nil {
		t.Fatalf("start failure: %v", err)
	}
	if st := h.containerStatus(d.GetId()); st != "created" {
		t.Errorf("container that failed to start should be kept, is %s", st)
	}
}

// must_run on Read (resourceDockerContainerRead): what happens to a container that is not running.
func TestDockerMustRun(t *testing.T) {
	h := dockerHarness(t)
	defer setCreationTime(time.Time{})

	// start=false with the default mustRun=true, before this process started any container:
	// Read removes it and the create fails without a partial state
	setCreationTime(time.Time{})
	_, _, err := h.create(tokContainer, "a", map[string]any{"name": h.tag + "-a", "image": testImageID, "start": false})
	if err == nil || !strings.Contains(err.Error(), "expected non-nil error with nil state") || initFailed(err) != nil {
		t.Errorf("start=false, mustRun=true, fresh process: %v", err)
	}
	// the same after this process started a container: "failed to be in running state"
	setCreationTime(time.Now())
	_, _, err = h.create(tokContainer, "b", map[string]any{"name": h.tag + "-b", "image": testImageID, "start": false})
	if err == nil || !strings.Contains(err.Error(), "container failed to be in running state") || initFailed(err) != nil {
		t.Errorf("start=false, mustRun=true, after a start: %v", err)
	}
	// a container that exits at once: "container exited immediately", removed
	_, _, err = h.create(tokContainer, "c", map[string]any{"name": h.tag + "-c", "image": testImageID, "command": []any{"true"}, "networkMode": "none"})
	if err == nil || !strings.Contains(err.Error(), "container exited immediately") || initFailed(err) != nil {
		t.Errorf("exited at once: %v", err)
	}
	list, _ := h.cli.ContainerList(h.ctx, container.ListOptions{All: true})
	for _, c := range list {
		if strings.HasPrefix(strings.TrimPrefix(c.Names[0], "/"), h.tag) {
			t.Errorf("container %s left behind", c.Names[0])
		}
	}
	// a refresh (a fresh provider process) of a stopped container with mustRun: deleted, gone
	id, outs, err := h.create(tokContainer, "d", map[string]any{"name": h.tag + "-d", "image": testImageID, "networkMode": "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cli.ContainerStop(h.ctx, id, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	setCreationTime(time.Time{})
	rid, _, err := h.read(tokContainer, "d", id, outs)
	if err != nil || rid != "" || h.containerStatus(id) != "gone" {
		t.Errorf("refresh of a stopped mustRun container: id %q err %v status %s", rid, err, h.containerStatus(id))
	}
	// mustRun=false: a stopped container is kept and read
	id, outs, err = h.create(tokContainer, "e", map[string]any{"name": h.tag + "-e", "image": testImageID, "networkMode": "none", "mustRun": false})
	if err != nil {
		t.Fatal(err)
	}
	h.cli.ContainerStop(h.ctx, id, container.StopOptions{})
	rid, routs, err := h.read(tokContainer, "e", id, outs)
	if err != nil || rid != id || !present(routs, "exitCode") {
		t.Errorf("refresh of a stopped mustRun=false container: %q %v %v", rid, routs["exitCode"], err)
	}
	// a container removed behind our back is gone; deleting it is an error (stop fails)
	h.cli.ContainerRemove(h.ctx, id, container.RemoveOptions{Force: true})
	if rid, _, err := h.read(tokContainer, "e", id, outs); rid != "" || err != nil {
		t.Errorf("read of a removed container: %q %v", rid, err)
	}
	if err := h.delete(tokContainer, "e", id, outs); err == nil || !strings.Contains(err.Error(), "Error stopping container") {
		t.Errorf("delete of a removed container: %v", err)
	}
}

// Volume delete: VolumeRemove with force, retried while a container still uses the volume; a
// missing volume is removed without error; Read of a missing volume is an error.
func TestDockerVolumeDelete(t *testing.T) {
	h := dockerHarness(t)
	volName := h.tag + "-v"
	id, outs, err := h.create(tokVolume, "v", map[string]any{"name": volName})
	if err != nil {
		t.Fatal(err)
	}
	user, _, err := h.create(tokContainer, "user", map[string]any{"name": h.tag + "-user", "image": testImageID,
		"start": false, "mustRun": false, "volumes": []any{map[string]any{"volumeName": volName, "containerPath": "/v"}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(3 * time.Second)
		h.cli.ContainerRemove(context.Background(), user, container.RemoveOptions{Force: true})
	}()
	start := time.Now()
	if err := h.delete(tokVolume, "v", id, outs); err != nil {
		t.Fatalf("delete while in use, then free: %v", err)
	}
	if took := time.Since(start); took < 6*time.Second {
		t.Errorf("expected the 2 s delay and a 5 s retry, took %s", took)
	}
	if err := h.delete(tokVolume, "v", id, outs); err != nil {
		t.Errorf("delete of a missing volume (force): %v", err)
	}
	if _, _, err := h.read(tokVolume, "v", id, outs); err == nil || !strings.Contains(err.Error(), "Unable to inspect volume") {
		t.Errorf("read of a missing volume: %v", err)
	}
}

// RemoteImage: a local image is used as it is; imageId is the full sha256 ID; the resource ID
// is the image ID followed by the name; delete removes the tag unless keepLocally.
func TestDockerRemoteImage(t *testing.T) {
	h := dockerHarness(t)
	id, outs, err := h.create(tokRemoteImage, "img", map[string]any{"name": testImageRef, "keepLocally": true})
	if err != nil {
		t.Fatal(err)
	}
	if outs["imageId"].StringValue() != testImageID || !strings.HasPrefix(testImageID, "sha256:") || len(testImageID) != 71 ||
		id != testImageID+testImageRef || outs["latest"].StringValue() != testImageID {
		t.Errorf("id %q outputs %v", id, outs)
	}
	if rid, routs, err := h.read(tokRemoteImage, "img", id, outs); err != nil || rid != id || routs["imageId"].StringValue() != testImageID {
		t.Errorf("read %q %v %v", rid, routs, err)
	}
	if err := h.delete(tokRemoteImage, "img", id, outs); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cli.ImageInspect(h.ctx, testImageRef); err != nil {
		t.Errorf("keepLocally image removed: %v", err)
	}
	extra := "tizi-standin-test:" + strings.TrimPrefix(h.tag, "tizi-standin-test-")
	if err := h.cli.ImageTag(h.ctx, testImageID, extra); err != nil {
		t.Fatal(err)
	}
	id, outs, err = h.create(tokRemoteImage, "tag", map[string]any{"name": extra})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.delete(tokRemoteImage, "tag", id, outs); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cli.ImageInspect(h.ctx, extra); !cerrdefs.IsNotFound(err) {
		t.Errorf("tag not removed: %v", err)
	}
	if _, _, err := h.create(tokRemoteImage, "missing", map[string]any{"name": "127.0.0.1:1/tizi-missing:1"}); err == nil ||
		!strings.Contains(err.Error(), "Unable to read Docker image into resource") {
		t.Errorf("missing image: %v", err)
	}
}

func volumeListAll() volume.ListOptions { return volume.ListOptions{} }

// The serving container as tizi's edge plan configures it: after Create (which ends with
// Read), the same program (image by ID) shows no diff, so a second `pulumi up` is a no-op.
func TestDockerTiziEdgeArgsStable(t *testing.T) {
	h := dockerHarness(t)
	volName := h.tag + "-keys"
	if _, _, err := h.create(tokVolume, "keys", map[string]any{"name": volName}); err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{
		"name": h.tag + "-svc", "image": testImageID, "user": "10001:10001", "readOnly": true,
		"tmpfs":   map[string]any{"/tmp": "rw,noexec,nosuid,nodev,size=16m"},
		"volumes": []any{map[string]any{"volumeName": volName, "containerPath": "/run/secrets/tizi", "readOnly": true}},
		"envs":    []any{"TIZI_PORT=8080", "A=1"},
		"healthcheck": map[string]any{"tests": []any{"CMD", "/tool", "true"}, "interval": "5s", "timeout": "3s",
			"retries": 3.0, "startPeriod": "10s"},
		"restart": "always", "logDriver": "json-file", "logOpts": map[string]any{"max-size": "10m", "max-file": "3"},
		"memory": 256.0, "memorySwap": 256.0, "cpuShares": 1024.0, "cpuSet": "0", "stopTimeout": 25.0,
		"stopSignal": "SIGTERM", "destroyGraceSeconds": 25.0, "capabilities": map[string]any{"drops": []any{"ALL"}},
		"securityOpts": []any{"no-new-privileges"}, "labels": []any{map[string]any{"label": "tizi.region", "value": "r1"}},
		"networkMode": "host", "mustRun": true, "wait": true, "waitTimeout": 30.0,
	}
	id, outs, err := h.create(tokContainer, "svc", inputs)
	if err != nil {
		t.Fatal(err)
	}
	olds, _ := marshal(outs)
	news, _ := marshal(checked(inputs))
	d, err := h.p.Diff(h.ctx, &pulumirpc.DiffRequest{Urn: urnOf(tokContainer, "svc"), Type: tokContainer, Id: id, Olds: olds, News: news})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("second up would change %v (%v)", d.GetDiffs(), d.GetDetailedDiff())
	}
	if err := h.delete(tokContainer, "svc", id, outs); err != nil {
		t.Error(err)
	}
}

// Network: create (Read after upstream's 2 s delay), a container on it by networkMode, no diff
// for either on a second up, networkDatas with the container's address on the network; delete
// retried while the container is still attached; a missing network reads as gone and deletes
// without error; a second network of the same name is refused.
func TestDockerNetwork(t *testing.T) {
	h := dockerHarness(t)
	netName := h.tag + "-net"
	netInputs := map[string]any{"name": netName, "labels": []any{map[string]any{"label": "tizi.site", "value": "s1"}}}
	start := time.Now()
	netID, netOuts, err := h.create(tokNetwork, "net", netInputs)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("Read's 2 s delay missing: %s", took)
	}
	ipam := netOuts["ipamConfigs"].ArrayValue()
	if netOuts["name"].StringValue() != netName || netOuts["driver"].StringValue() != "bridge" ||
		netOuts["scope"].StringValue() != "local" || netOuts["ipamDriver"].StringValue() != "default" || len(ipam) == 0 ||
		netOuts["labels"].ArrayValue()[0].ObjectValue()["value"].StringValue() != "s1" {
		t.Fatalf("network outputs %v", netOuts)
	}
	_, subnet, err := net.ParseCIDR(ipam[0].ObjectValue()["subnet"].StringValue())
	if err != nil {
		t.Fatalf("ipamConfigs %v: %v", ipam, err)
	}
	if d := h.diff(tokNetwork, "net", netID, netOuts, netInputs); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("network: second up would change %v", d.GetDiffs())
	}

	ctrInputs := map[string]any{"name": h.tag + "-svc", "image": testImageID, "networkMode": netName}
	ctrID, ctrOuts, err := h.create(tokContainer, "svc", ctrInputs)
	if err != nil {
		t.Fatal(err)
	}
	datas := ctrOuts["networkDatas"].ArrayValue()
	if ctrOuts["networkMode"].StringValue() != netName || len(datas) != 1 ||
		datas[0].ObjectValue()["networkName"].StringValue() != netName ||
		!subnet.Contains(net.ParseIP(datas[0].ObjectValue()["ipAddress"].StringValue())) ||
		ctrOuts["ipAddress"].StringValue() != datas[0].ObjectValue()["ipAddress"].StringValue() {
		t.Errorf("container on %s (%s): networkMode %v networkDatas %v", netName, subnet, ctrOuts["networkMode"], datas)
	}
	if d := h.diff(tokContainer, "svc", ctrID, ctrOuts, ctrInputs); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("container: second up would change %v", d.GetDiffs())
	}
	if rid, routs, err := h.read(tokContainer, "svc", ctrID, ctrOuts); err != nil || rid != ctrID ||
		!routs["networkDatas"].DeepEquals(ctrOuts["networkDatas"]) {
		t.Errorf("container read: %q %v %v", rid, routs["networkDatas"], err)
	}

	// the container leaves after 3 s: the first removal (after the 2 s delay) finds active
	// endpoints, the next one 5 s later succeeds
	done := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second)
		done <- h.delete(tokContainer, "svc", ctrID, ctrOuts)
	}()
	start = time.Now()
	if err := h.delete(tokNetwork, "net", netID, netOuts); err != nil {
		t.Fatalf("delete while a container is attached, then free: %v", err)
	}
	if took := time.Since(start); took < 7*time.Second {
		t.Errorf("expected the 2 s delay and a 5 s retry, took %s", took)
	}
	if err := <-done; err != nil || h.containerStatus(ctrID) != "gone" {
		t.Errorf("container delete: %v", err)
	}
	if rid, _, err := h.read(tokNetwork, "net", netID, netOuts); rid != "" || err != nil {
		t.Errorf("read of a removed network: %q %v", rid, err)
	}
	if err := h.delete(tokNetwork, "net", netID, netOuts); err != nil {
		t.Errorf("delete of a removed network: %v", err)
	}

	dupID, dupOuts, err := h.create(tokNetwork, "dup", map[string]any{"name": netName})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.create(tokNetwork, "dup2", map[string]any{"name": netName}); err == nil ||
		!strings.Contains(err.Error(), "Unable to create network") {
		t.Errorf("second network named %s: %v", netName, err)
	}
	if err := h.delete(tokNetwork, "dup", dupID, dupOuts); err != nil {
		t.Error(err)
	}
}
