package main

import (
	"reflect"
	"regexp"
	"sort"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const testURN = "urn:pulumi:dev::tizi::tizi:edge:EdgeService$docker:index/container:Container::site-container"

func check(typ string, news map[string]any) checkResult {
	return checkResource(typ, testURN, []byte("seed"), nil, props(news))
}

func defaultsOf(m resource.PropertyMap) []string {
	var out []string
	for _, e := range m[defaultsKey].ArrayValue() {
		out = append(out, e.StringValue())
	}
	return out
}

// Check fills in the Default values of resource_docker_container.go and lists them under
// __defaults, as the bridge's Check (MakeTerraformInputs) does; log_driver has no default.
func TestCheckContainerDefaults(t *testing.T) {
	r := check(tokContainer, map[string]any{"name": "c", "image": "img:1",
		"healthcheck": map[string]any{"tests": []any{"CMD", "true"}},
		"uploads":     []any{map[string]any{"file": "/k", "content": "x"}}})
	if len(r.failures) != 0 {
		t.Fatalf("unexpected failures %v", r.failures)
	}
	for k, want := range map[string]any{
		"restart": "no", "start": true, "mustRun": true, "wait": false, "waitTimeout": 60.0, "attach": false,
		"logs": false, "readOnly": false, "removeVolumes": true, "rm": false, "tty": false, "stdinOpen": false,
		"containerReadRefreshTimeoutMilliseconds": 15000.0,
	} {
		if got := r.inputs[resource.PropertyKey(k)].Mappable(); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if present(r.inputs, "logDriver") {
		t.Errorf("log_driver has no Default upstream (Computed): %v", r.inputs["logDriver"])
	}
	hc := r.inputs["healthcheck"].ObjectValue()
	if hc["interval"].StringValue() != "0s" || hc["startPeriod"].StringValue() != "0s" || hc["retries"].NumberValue() != 0 {
		t.Errorf("healthcheck defaults %v", hc)
	}
	if !r.inputs["uploads"].ArrayValue()[0].ObjectValue()["executable"].IsBool() {
		t.Errorf("upload executable default missing")
	}
	if d := defaultsOf(r.inputs); !sort.StringsAreSorted(d) || len(d) != 13 {
		t.Errorf("__defaults %v", d)
	}
}

func TestCheckContainerKeepsGivenValues(t *testing.T) {
	r := check(tokContainer, map[string]any{
		"name": "c", "image": "img:1", "restart": "always", "start": false, "logDriver": "local", "must_run": false,
	})
	if r.inputs["restart"].StringValue() != "always" || r.inputs["start"].BoolValue() ||
		r.inputs["logDriver"].StringValue() != "local" || r.inputs["mustRun"].BoolValue() {
		t.Errorf("given values overwritten: %v", r.inputs)
	}
	for _, k := range defaultsOf(r.inputs) {
		if k == "restart" || k == "start" || k == "mustRun" || k == "name" {
			t.Errorf("%s listed as defaulted", k)
		}
	}
}

func TestCheckRequired(t *testing.T) {
	r := check(tokContainer, map[string]any{})
	if got := failureProps(r); !reflect.DeepEqual(got, []string{"image"}) {
		t.Errorf("failures on %v, want image only (name is autonamed)", got)
	}
	if got := failureProps(check(tokRemoteImage, map[string]any{})); !reflect.DeepEqual(got, []string{"name"}) {
		t.Errorf("RemoteImage failures %v", got)
	}
	if r := check("docker:index/service:Service", map[string]any{}); len(r.failures) != 1 {
		t.Errorf("unknown type not reported")
	}
	r = check(tokContainer, map[string]any{"image": "i", "uploads": []any{map[string]any{"file": "/a", "content": "x", "contentBase64": "eA=="}}})
	if got := failureProps(r); !reflect.DeepEqual(got, []string{"uploads[0]"}) {
		t.Errorf("two contents accepted: %v", got)
	}
}

// pulumi-docker 4.0.0 calls prov.SetAutonaming(255, "-"): Container, Volume and Network get
// "<resource name>-<7 hex>" when the program gives no name; RemoteImage (a `name` field
// override) does not.
func TestCheckAutonaming(t *testing.T) {
	for _, typ := range []string{tokContainer, tokVolume, tokNetwork} {
		r := check(typ, map[string]any{"image": "i"})
		name := r.inputs["name"].StringValue()
		if !regexp.MustCompile(`^site-container-[0-9a-f]{7}$`).MatchString(name) {
			t.Errorf("%s autoname %q", typ, name)
		}
		if again := check(typ, map[string]any{"image": "i"}); again.inputs["name"].StringValue() != name {
			t.Errorf("autoname not a function of the seed")
		}
		if !defaulted(r.inputs, "name") {
			t.Errorf("autoname not listed in __defaults")
		}
		// an earlier autoname is kept
		kept := checkResource(typ, testURN, []byte("other"), r.inputs, props(map[string]any{"image": "i"}))
		if kept.inputs["name"].StringValue() != name {
			t.Errorf("earlier autoname not kept: %v", kept.inputs["name"])
		}
	}
}

func TestCheckNormalizesSnakeCase(t *testing.T) {
	r := check(tokContainer, map[string]any{
		"name": "c", "image": "i", "must_run": true, "read_only": true,
		"volumes":     []any{map[string]any{"volume_name": "keys", "container_path": "/run/k", "read_only": true}},
		"tmpfs":       map[string]any{"/tmp": "rw,size=16m"},
		"healthcheck": map[string]any{"tests": []any{"CMD-SHELL", "true"}, "start_period": "5s"},
	})
	if len(r.failures) != 0 {
		t.Fatalf("failures %v", r.failures)
	}
	vol := r.inputs["volumes"].ArrayValue()[0].ObjectValue()
	if vol["volumeName"].StringValue() != "keys" || vol["containerPath"].StringValue() != "/run/k" {
		t.Errorf("nested keys not normalised: %v", vol)
	}
	if _, ok := r.inputs["tmpfs"].ObjectValue()["/tmp"]; !ok {
		t.Errorf("map-valued keys rewritten: %v", r.inputs["tmpfs"])
	}
	if r.inputs["healthcheck"].ObjectValue()["startPeriod"].StringValue() != "5s" {
		t.Errorf("healthcheck.start_period lost")
	}
}

// an old state, as Create writes it (inputs merged with what Read sets)
func containerState() map[string]any {
	return map[string]any{
		"name": "c", "image": "sha256:aaaa", "restart": "always", "memory": 512.0, "memorySwap": 512.0,
		"mustRun": true, "wait": true, "start": true, "readOnly": true, "user": "10001:10001",
		"volumes":  []any{map[string]any{"volumeName": "v", "containerPath": "/p", "readOnly": true}, map[string]any{"volumeName": "m", "containerPath": "/m"}},
		"uploads":  []any{map[string]any{"file": "/p/k", "content": "secret", "executable": false}},
		"envs":     []any{"A=1", "B=2"},
		"hostname": "0123456789ab", "command": []any{"sleep"}, "dns": []any{}, "privileged": false,
		"networkMode": "host", "healthcheck": map[string]any{"tests": []any{"CMD", "true"}, "interval": "5s",
			"timeout": "3s", "startPeriod": "10s", "retries": 3.0},
		"capabilities": map[string]any{"adds": []any{}, "drops": []any{"ALL"}},
		"exitCode":     0.0, "networkDatas": []any{},
		"removeVolumes": true, "waitTimeout": 60.0, "containerReadRefreshTimeoutMilliseconds": 15000.0,
	}
}

// checked runs program inputs through Check, as the engine does before Diff.
func checked(m map[string]any) resource.PropertyMap {
	return checkResource(tokContainer, testURN, nil, nil, props(m)).inputs
}

// the program's inputs that produced containerState
func containerInputs() map[string]any {
	return map[string]any{
		"name": "c", "image": "sha256:aaaa", "restart": "always", "memory": 512.0, "memorySwap": 512.0,
		"mustRun": true, "wait": true, "start": true, "readOnly": true, "user": "10001:10001",
		"volumes":     []any{map[string]any{"volumeName": "m", "containerPath": "/m"}, map[string]any{"volumeName": "v", "containerPath": "/p", "readOnly": true}},
		"uploads":     []any{map[string]any{"file": "/p/k", "content": "secret"}},
		"envs":        []any{"B=2", "A=1"},
		"networkMode": "host", "healthcheck": map[string]any{"tests": []any{"CMD", "true"}, "interval": "5s",
			"timeout": "3s", "startPeriod": "10s", "retries": 3.0},
		"capabilities": map[string]any{"drops": []any{"ALL"}},
		defaultsKey:    []any{},
	}
}

func TestDiffNoChangeAgainstReadState(t *testing.T) {
	d := diffResource(tokContainer, props(containerState()), checked(containerInputs()), nil)
	if len(d.changed) != 0 || d.deleteBeforeReplace {
		t.Errorf("inputs equal to the state differ (computed, zero, set order, nested zero): %+v", d)
	}
}

func TestDiffSecretsCompareByContent(t *testing.T) {
	news := checked(containerInputs())
	news["uploads"] = resource.MakeSecret(news["uploads"])
	if d := diffResource(tokContainer, props(containerState()), news, nil); len(d.changed) != 0 {
		t.Errorf("secret wrapper counted as a change: %+v", d)
	}
	changed := containerInputs()
	changed["uploads"] = []any{map[string]any{"file": "/p/k", "content": "rotated"}}
	news = checked(changed)
	news["uploads"] = resource.MakeSecret(news["uploads"])
	d := diffResource(tokContainer, props(containerState()), news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"uploads"}) {
		t.Errorf("changed upload should replace: %+v", d)
	}
}

// Read stores the image ID: a program that passes an image name differs from the state on
// every update, and image is ForceNew.
func TestDiffImageNameAgainstReadImageID(t *testing.T) {
	news := containerInputs()
	news["image"] = "tizi/app:1.0"
	d := diffResource(tokContainer, props(containerState()), checked(news), nil)
	if !reflect.DeepEqual(d.replaces, []string{"image"}) || !d.deleteBeforeReplace {
		t.Errorf("image name vs stored ID should replace (delete first): %+v", d)
	}
}

// The in-place / replace split of resource_docker_container.go: exactly the attributes
// without ForceNew update in place.
func TestDiffContainerInPlaceVersusReplaceKeys(t *testing.T) {
	inPlace := map[string]any{
		"restart": "unless-stopped", "maxRetryCount": 3.0, "cpuShares": 512.0, "memory": 1024.0,
		"memorySwap": 2048.0, "cpuSet": "0-1", "mustRun": false, "wait": false, "waitTimeout": 10.0,
		"destroyGraceSeconds": 30.0, "removeVolumes": false, "start": false, "rm": true, "attach": true,
		"logs": true, "tmpfs": map[string]any{"/tmp": "rw"}, "init": true,
		"containerReadRefreshTimeoutMilliseconds": 1000.0,
		"healthcheck": map[string]any{"tests": []any{"CMD", "true"}, "interval": "6s"},
	}
	for k, v := range inPlace {
		news := containerInputs()
		news[k] = v
		d := diffResource(tokContainer, props(containerState()), checked(news), nil)
		if !reflect.DeepEqual(d.changed, []string{k}) || len(d.replaces) != 0 || d.deleteBeforeReplace {
			t.Errorf("%s should update in place: %+v", k, d)
		}
	}
	replace := map[string]any{
		"name": "c2", "image": "sha256:bbbb", "user": "0", "readOnly": false, "envs": []any{"A=1"},
		"labels": []any{map[string]any{"label": "a", "value": "b"}}, "networkMode": "bridge",
		"logDriver": "local", "logOpts": map[string]any{"max-size": "1m"}, "stopTimeout": 5.0,
		"stopSignal": "SIGINT", "securityOpts": []any{"no-new-privileges"}, "entrypoints": []any{"true"},
		"capabilities": map[string]any{"drops": []any{"NET_RAW"}}, "privileged": true,
		"ports":   []any{map[string]any{"internal": 80.0, "ip": "0.0.0.0", "protocol": "tcp"}},
		"volumes": []any{map[string]any{"volumeName": "v", "containerPath": "/p"}},
		"uploads": []any{map[string]any{"file": "/p/k", "content": "other"}},
	}
	for k, v := range replace {
		news := containerInputs()
		news[k] = v
		d := diffResource(tokContainer, props(containerState()), checked(news), nil)
		if !reflect.DeepEqual(d.replaces, []string{k}) || !d.deleteBeforeReplace {
			t.Errorf("%s should replace, deleting first: %+v", k, d)
		}
	}
}

func TestDiffTerraformRules(t *testing.T) {
	state := containerState()
	state["shmSize"] = 64.0                              // computed, absent from the program: no change
	state["maxRetryCount"] = 0.0                         // zero, absent from the program: no change
	state["workingDir"] = "/srv"                         // "" is a no-op (DiffSuppressFunc)
	state["logOpts"] = map[string]any{"max-size": "10m"} // set upstream, absent now: a change
	news := containerInputs()
	news["workingDir"] = ""
	d := diffResource(tokContainer, props(state), checked(news), nil)
	if !reflect.DeepEqual(d.changed, []string{"logOpts"}) || !reflect.DeepEqual(d.replaces, []string{"logOpts"}) {
		t.Errorf("terraform absent/zero/computed rules: %+v", d)
	}
	// network_mode: "" reads as "default"
	state, news = containerState(), containerInputs()
	state["networkMode"], news["networkMode"] = "default", ""
	if d := diffResource(tokContainer, props(state), checked(news), nil); len(d.changed) != 0 {
		t.Errorf("network_mode '' vs default: %+v", d)
	}
	// Read writes Duration.String(): "60s" in the program is "1m0s" in the state, an in-place
	// diff on every update
	state, news = containerState(), containerInputs()
	state["healthcheck"].(map[string]any)["startPeriod"] = "1m0s"
	news["healthcheck"].(map[string]any)["startPeriod"] = "60s"
	if d := diffResource(tokContainer, props(state), checked(news), nil); !reflect.DeepEqual(d.changed, []string{"healthcheck"}) || len(d.replaces) != 0 {
		t.Errorf("healthcheck duration spelling: %+v", d)
	}
}

func TestDiffUnknownIsAChange(t *testing.T) {
	news := checked(containerInputs())
	news["image"] = resource.MakeComputed(resource.NewStringProperty(""))
	d := diffResource(tokContainer, props(containerState()), news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"image"}) {
		t.Errorf("unknown image should replace: %+v", d)
	}
}

func TestDiffIgnoreChanges(t *testing.T) {
	news := containerInputs()
	news["image"] = "tizi/app:1.0"
	if d := diffResource(tokContainer, props(containerState()), checked(news), []string{"image"}); len(d.changed) != 0 {
		t.Errorf("ignoreChanges not honoured: %+v", d)
	}
}

// Volume: every input ForceNew; a replacement deletes first when the program gave the name
// (bridge nameRequiresDeleteBeforeReplace), not when it was autonamed.
func TestDiffVolume(t *testing.T) {
	state := props(map[string]any{"name": "keys-1", "driver": "local", "mountpoint": "/var/lib/docker/volumes/keys-1/_data",
		"labels": []any{}, "driverOpts": map[string]any{}})
	news := props(map[string]any{"name": "keys-1", defaultsKey: []any{}})
	if d := diffResource(tokVolume, state, news, nil); len(d.changed) != 0 {
		t.Errorf("output-only, computed or zero keys compared: %+v", d)
	}
	news = props(map[string]any{"name": "keys-2", defaultsKey: []any{}})
	d := diffResource(tokVolume, state, news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"name"}) || !d.deleteBeforeReplace {
		t.Errorf("named volume rename: %+v", d)
	}
	news = props(map[string]any{"name": "keys-2", "driverOpts": map[string]any{"o": "x"}, defaultsKey: []any{"name"}})
	d = diffResource(tokVolume, state, news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"driverOpts", "name"}) || d.deleteBeforeReplace {
		t.Errorf("autonamed volume replacement should create first: %+v", d)
	}
}

// Network: Check fills ipam_driver's Default; every input is ForceNew; Optional+Computed
// driver/options/internal/ipamConfigs absent from the program keep the read state; a
// replacement deletes first only when the program gave the name (no DeleteBeforeReplace in
// pulumi-docker's resources.go for docker_network).
func TestDiffNetwork(t *testing.T) {
	state := props(map[string]any{"name": "tizi-net", "driver": "bridge", "internal": false, "attachable": false,
		"ingress": false, "ipv6": false, "ipamDriver": "default", "scope": "local", "options": map[string]any{},
		"ipamConfigs": []any{map[string]any{"subnet": "172.18.0.0/16", "gateway": "172.18.0.1"}},
		"labels":      []any{map[string]any{"label": "b", "value": "2"}, map[string]any{"label": "a", "value": "1"}}})
	net := func(m map[string]any) resource.PropertyMap {
		return checkResource(tokNetwork, testURN, []byte("seed"), nil, props(m)).inputs
	}
	program := func() map[string]any {
		return map[string]any{"name": "tizi-net", "labels": []any{map[string]any{"label": "a", "value": "1"},
			map[string]any{"label": "b", "value": "2"}}}
	}
	news := net(program())
	if news["ipamDriver"].StringValue() != "default" || !defaulted(news, "ipamDriver") || defaulted(news, "name") {
		t.Errorf("network check: %v", news)
	}
	if d := diffResource(tokNetwork, state, news, nil); len(d.changed) != 0 {
		t.Errorf("inputs equal to the read state differ: %+v", d)
	}
	for k, v := range map[string]any{
		"driver": "overlay", "internal": true, "attachable": true, "ipv6": true, "ingress": true,
		"options": map[string]any{"com.docker.network.bridge.name": "br-x"}, "ipamDriver": "other",
		"checkDuplicate": true, "labels": []any{map[string]any{"label": "a", "value": "9"}},
		// a subnet without its gateway differs from the set element Read stores (TF set hashing)
		"ipamConfigs": []any{map[string]any{"subnet": "172.18.0.0/16"}},
	} {
		in := program()
		in[k] = v
		d := diffResource(tokNetwork, state, net(in), nil)
		if !reflect.DeepEqual(d.replaces, []string{k}) || !d.deleteBeforeReplace {
			t.Errorf("%s should replace, deleting first (name given): %+v", k, d)
		}
	}
	in := program()
	delete(in, "name")
	in["driver"] = "macvlan"
	news = net(in)
	state["name"] = news["name"]
	d := diffResource(tokNetwork, state, news, nil)
	if !reflect.DeepEqual(d.replaces, []string{"driver"}) || d.deleteBeforeReplace {
		t.Errorf("autonamed network replacement should create first: %+v", d)
	}
}

func TestDiffRemoteImage(t *testing.T) {
	state := props(map[string]any{"name": "i:1", "keepLocally": true, "imageId": "sha256:abc", "latest": "sha256:abc", "repoDigest": ""})
	d := diffResource(tokRemoteImage, state, props(map[string]any{"name": "i:1", "keepLocally": false}), nil)
	if !reflect.DeepEqual(d.changed, []string{"keepLocally"}) || len(d.replaces) != 0 {
		t.Errorf("keepLocally should update in place: %+v", d)
	}
	d = diffResource(tokRemoteImage, state, props(map[string]any{"name": "i:2", "keepLocally": true}), nil)
	if !reflect.DeepEqual(d.replaces, []string{"name"}) || d.deleteBeforeReplace {
		t.Errorf("name change should replace, creating first: %+v", d)
	}
}

func TestNullEqualsAbsent(t *testing.T) {
	news := checked(containerInputs())
	news["envs"] = resource.NewNullProperty() // computed: keeps the state
	news["dns"] = resource.NewNullProperty()
	if d := diffResource(tokContainer, props(containerState()), news, nil); len(d.changed) != 0 {
		t.Errorf("null vs absent counted: %+v", d)
	}
}

// Update: changed attributes take the new values, everything else keeps the state.
func TestUpdatedState(t *testing.T) {
	news := containerInputs()
	news["memory"] = 1024.0
	news["mustRun"] = false
	outs := updatedState(tokContainer, props(containerState()), checked(news))
	if outs["memory"].NumberValue() != 1024 || outs["mustRun"].BoolValue() {
		t.Errorf("changed values not applied: %v", outs)
	}
	if outs["hostname"].StringValue() != "0123456789ab" || outs["image"].StringValue() != "sha256:aaaa" {
		t.Errorf("state values lost: %v", outs)
	}
}

// A refresh reports the state's values for the inputs the program had.
func TestRefreshedInputs(t *testing.T) {
	oldIns := props(map[string]any{"name": "c", "image": "tizi/app:1.0", "mustRun": true, defaultsKey: []any{"mustRun"}})
	outs := props(map[string]any{"name": "c", "image": "sha256:aaaa", "mustRun": true, "hostname": "x"})
	in := refreshedInputs(oldIns, outs)
	if in["image"].StringValue() != "sha256:aaaa" || present(in, "hostname") {
		t.Errorf("refreshed inputs %v", in)
	}
	if !defaulted(in, "mustRun") {
		t.Errorf("__defaults lost: %v", in)
	}
}
