package main

import (
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func props(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

func failureProps(r checkResult) []string {
	var out []string
	for _, f := range r.failures {
		out = append(out, f.property)
	}
	return out
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"volume_name": "volumeName", "volumeName": "volumeName", "content_base64": "contentBase64",
		"name": "name", "start_period": "startPeriod",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckContainerDefaults(t *testing.T) {
	r := checkResource(tokContainer, props(map[string]any{"name": "c", "image": "img:1"}))
	if len(r.failures) != 0 {
		t.Fatalf("unexpected failures %v", r.failures)
	}
	for k, want := range map[string]any{
		"restart": "no", "start": true, "logDriver": "json-file", "mustRun": true, "wait": false,
	} {
		if got := r.inputs[resource.PropertyKey(k)].Mappable(); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
}

func TestCheckContainerKeepsGivenValues(t *testing.T) {
	r := checkResource(tokContainer, props(map[string]any{
		"name": "c", "image": "img:1", "restart": "always", "start": false, "logDriver": "local",
	}))
	if r.inputs["restart"].StringValue() != "always" || r.inputs["start"].BoolValue() ||
		r.inputs["logDriver"].StringValue() != "local" {
		t.Errorf("given values overwritten: %v", r.inputs)
	}
}

func TestCheckContainerRequired(t *testing.T) {
	r := checkResource(tokContainer, props(map[string]any{}))
	got := failureProps(r)
	if !reflect.DeepEqual(got, []string{"image", "name"}) {
		t.Errorf("failures on %v, want image and name", got)
	}
	// a value not yet known (an image ID during preview) is not missing
	news := props(map[string]any{"name": "c"})
	news["image"] = resource.MakeComputed(resource.NewStringProperty(""))
	if r := checkResource(tokContainer, news); len(r.failures) != 0 {
		t.Errorf("unknown image reported: %v", r.failures)
	}
	if r := checkResource(tokContainer, props(map[string]any{"name": "", "image": "i"})); !reflect.DeepEqual(failureProps(r), []string{"name"}) {
		t.Errorf("empty name not reported: %v", r.failures)
	}
}

func TestCheckContainerNested(t *testing.T) {
	r := checkResource(tokContainer, props(map[string]any{
		"name": "c", "image": "i", "restart": "sometimes",
		"uploads":     []any{map[string]any{"file": "/a"}, map[string]any{"content": "x"}},
		"ports":       []any{map[string]any{"internal": 80}},
		"healthcheck": map[string]any{"tests": []any{"CMD", "true"}, "interval": "ten seconds"},
	}))
	got := failureProps(r)
	want := []string{"restart", "uploads[0]", "uploads[1].file", "healthcheck.interval"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("failures %v, want %v", got, want)
	}
	port := r.inputs["ports"].ArrayValue()[0].ObjectValue()
	if port["ip"].StringValue() != "0.0.0.0" || port["protocol"].StringValue() != "tcp" {
		t.Errorf("port defaults missing: %v", port)
	}
}

func TestCheckNormalizesSnakeCase(t *testing.T) {
	r := checkResource(tokContainer, props(map[string]any{
		"name": "c", "image": "i",
		"volumes":  []any{map[string]any{"volume_name": "v", "container_path": "/p"}},
		"log_opts": map[string]any{"max_size": "10m"},
		"tmpfs":    map[string]any{"/tmp_dir": "rw"},
	}))
	if len(r.failures) != 0 {
		t.Fatalf("failures %v", r.failures)
	}
	vol := r.inputs["volumes"].ArrayValue()[0].ObjectValue()
	if !vol.HasValue("volumeName") || !vol.HasValue("containerPath") {
		t.Errorf("volume keys not normalized: %v", vol)
	}
	if !r.inputs["logOpts"].ObjectValue().HasValue("max_size") {
		t.Errorf("map-valued keys rewritten: %v", r.inputs["logOpts"])
	}
	if !r.inputs["tmpfs"].ObjectValue().HasValue("/tmp_dir") {
		t.Errorf("tmpfs keys rewritten: %v", r.inputs["tmpfs"])
	}
}

func TestCheckRemoteImage(t *testing.T) {
	if r := checkResource(tokRemoteImage, props(map[string]any{})); !reflect.DeepEqual(failureProps(r), []string{"name"}) {
		t.Errorf("missing name not reported: %v", r.failures)
	}
	r := checkResource(tokRemoteImage, props(map[string]any{"name": "i:1"}))
	if r.inputs["keepLocally"].BoolValue() {
		t.Errorf("keepLocally default should be false")
	}
	if r := checkResource("docker:index/network:Network", props(map[string]any{})); len(r.failures) != 1 {
		t.Errorf("unknown type not reported")
	}
}

func base() map[string]any {
	return map[string]any{
		"name": "c", "image": "i", "restart": "always", "memory": 512, "mustRun": true, "wait": true,
		"volumes": []any{map[string]any{"volumeName": "v", "containerPath": "/p"}},
		"uploads": []any{map[string]any{"file": "/p/k", "content": "secret"}},
	}
}

func TestDiffNoChange(t *testing.T) {
	d := diffResource(tokContainer, props(base()), props(base()), nil)
	if len(d.changed) != 0 || len(d.replaces) != 0 {
		t.Errorf("identical inputs differ: %+v", d)
	}
}

func TestDiffSecretsCompareByContent(t *testing.T) {
	news := props(base())
	news["uploads"] = resource.MakeSecret(news["uploads"])
	if d := diffResource(tokContainer, props(base()), news, nil); len(d.changed) != 0 {
		t.Errorf("secret wrapper counted as a change: %+v", d)
	}
	changed := base()
	changed["uploads"] = []any{map[string]any{"file": "/p/k", "content": "rotated"}}
	news = props(changed)
	news["uploads"] = resource.MakeSecret(news["uploads"])
	d := diffResource(tokContainer, props(base()), news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"uploads"}) {
		t.Errorf("changed upload should replace: %+v", d)
	}
}

func TestDiffContainerReplacesEveryDockerSetting(t *testing.T) {
	n := base()
	n["memory"] = 1024
	n["envs"] = []any{"A=1"}
	n["wait"] = false    // provider-only: update in place
	delete(n, "restart") // removed
	d := diffResource(tokContainer, props(base()), props(n), nil)
	if !reflect.DeepEqual(d.changed, []string{"envs", "memory", "restart", "wait"}) {
		t.Errorf("changed %v", d.changed)
	}
	if !reflect.DeepEqual(d.replaces, []string{"envs", "memory", "restart"}) {
		t.Errorf("replaces %v", d.replaces)
	}
}

func TestDiffUnknownIsAChange(t *testing.T) {
	news := props(base())
	news["image"] = resource.MakeComputed(resource.NewStringProperty(""))
	d := diffResource(tokContainer, props(base()), news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"image"}) {
		t.Errorf("unknown image should replace: %+v", d)
	}
}

func TestDiffSkipsOutputsAndIgnoreChanges(t *testing.T) {
	olds := props(map[string]any{"name": "v", "mountpoint": "/var/lib/docker/volumes/v/_data", "driver": "local"})
	news := props(map[string]any{"name": "v", "driver": "local"})
	if d := diffResource(tokVolume, olds, news, nil); len(d.changed) != 0 {
		t.Errorf("output-only key compared: %+v", d)
	}
	news = props(map[string]any{"name": "w", "driver": "local"})
	if d := diffResource(tokVolume, olds, news, nil); !reflect.DeepEqual(d.replaces, []string{"name"}) {
		t.Errorf("volume rename should replace: %+v", d)
	}
	if d := diffResource(tokVolume, olds, news, []string{"name"}); len(d.changed) != 0 {
		t.Errorf("ignoreChanges not honoured: %+v", d)
	}
}

func TestDiffRemoteImage(t *testing.T) {
	olds := props(map[string]any{"name": "i:1", "keepLocally": true, "imageId": "sha256:abc"})
	d := diffResource(tokRemoteImage, olds, props(map[string]any{"name": "i:1", "keepLocally": false}), nil)
	if !reflect.DeepEqual(d.changed, []string{"keepLocally"}) || len(d.replaces) != 0 {
		t.Errorf("keepLocally should update in place: %+v", d)
	}
	d = diffResource(tokRemoteImage, olds, props(map[string]any{"name": "i:2", "keepLocally": true}), nil)
	if !reflect.DeepEqual(d.replaces, []string{"name"}) {
		t.Errorf("name change should replace: %+v", d)
	}
}

func TestNullEqualsAbsent(t *testing.T) {
	olds := props(map[string]any{"name": "v"})
	news := props(map[string]any{"name": "v"})
	news["driver"] = resource.NewNullProperty()
	if d := diffResource(tokVolume, olds, news, nil); len(d.changed) != 0 {
		t.Errorf("null vs absent counted: %+v", d)
	}
}

func TestParseSSH(t *testing.T) {
	tgt, err := parseSSH("ssh://deploy@edge.example:2200")
	if err != nil {
		t.Fatal(err)
	}
	args := tgt.sshArgs(nil)
	tail := args[len(args)-9:]
	want := []string{"-p", "2200", "--", "deploy@edge.example", "docker", "system", "dial-stdio"}
	if !reflect.DeepEqual(tail[2:], want) {
		t.Errorf("ssh args %v", args)
	}
	tgt, _ = parseSSH("ssh://tizi-edge")
	args = tgt.sshArgs(nil)
	if args[len(args)-4] != "tizi-edge" {
		t.Errorf("ssh args %v", args)
	}
	for _, bad := range []string{"ssh://", "ssh://u:pw@h", "ssh://h/path", "http://h", "h:22"} {
		if validateHost(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "ssh://h"} {
		if err := validateHost(good); err != nil {
			t.Errorf("%q rejected: %v", good, err)
		}
	}
}
