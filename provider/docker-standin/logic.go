package main

// Pure Check/Diff logic on property maps: no Docker, no gRPC, unit-tested in logic_test.go.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Resource type tokens, exactly as pulumi-docker 4.0.0's SDKs register them.
const (
	tokContainer   = "docker:index/container:Container"
	tokVolume      = "docker:index/volume:Volume"
	tokRemoteImage = "docker:index/remoteImage:RemoteImage"
)

// mapValued names properties whose object keys are user data (paths, option names), not
// property names: their keys are never rewritten.
var mapValued = map[string]bool{
	"tmpfs": true, "logOpts": true, "driverOpts": true, "sysctls": true, "storageOpts": true,
}

// providerOnly names container inputs that only change how this provider behaves (waiting,
// stopping), not the container itself: a change to them is an in-place update.
var providerOnly = map[string]bool{
	"mustRun": true, "wait": true, "waitTimeout": true, "destroyGraceSeconds": true,
	"containerReadRefreshTimeoutMilliseconds": true, "removeVolumes": true,
}

// computedOutputs names output-only properties per type: never compared as inputs.
var computedOutputs = map[string]map[string]bool{
	tokContainer:   {"id": true, "exitCode": true, "networkDatas": true, "containerLogs": true},
	tokVolume:      {"id": true, "mountpoint": true},
	tokRemoteImage: {"id": true, "imageId": true, "repoDigest": true},
}

// camel turns snake_case into camelCase ("volume_name" -> "volumeName"); camelCase is unchanged.
func camel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	parts := strings.Split(s, "_")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

// normalize rewrites object keys to the camelCase the schema uses, whichever form a client
// sent, leaving the keys of map-valued properties alone.
func normalize(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		key := camel(string(k))
		if mapValued[key] {
			out[resource.PropertyKey(key)] = v
			continue
		}
		out[resource.PropertyKey(key)] = normalizeValue(v)
	}
	return out
}

func normalizeValue(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsObject():
		return resource.NewObjectProperty(normalize(v.ObjectValue()))
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = normalizeValue(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsSecret():
		return resource.MakeSecret(normalizeValue(v.SecretValue().Element))
	case v.IsOutput():
		o := v.OutputValue()
		o.Element = normalizeValue(o.Element)
		return resource.NewOutputProperty(o)
	}
	return v
}

// unwrap removes secret markers (and known output wrappers) so values compare by content.
func unwrap(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return unwrap(v.SecretValue().Element)
	case v.IsOutput() && v.OutputValue().Known:
		return unwrap(v.OutputValue().Element)
	case v.IsObject():
		m := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			if !e.IsNull() {
				m[k] = unwrap(e)
			}
		}
		return resource.NewObjectProperty(m)
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = unwrap(e)
		}
		return resource.NewArrayProperty(arr)
	}
	return v
}

func unknown(v resource.PropertyValue) bool {
	return v.ContainsUnknowns()
}

func present(m resource.PropertyMap, k string) bool {
	v, ok := m[resource.PropertyKey(k)]
	return ok && !v.IsNull()
}

// setDefault adds k=v when k is absent or null.
func setDefault(m resource.PropertyMap, k string, v resource.PropertyValue) {
	if !present(m, k) {
		m[resource.PropertyKey(k)] = v
	}
}

// checkResult is what Check answers: the inputs to store and the failures to report.
type checkResult struct {
	inputs   resource.PropertyMap
	failures []checkFailure
}

type checkFailure struct{ property, reason string }

func (r *checkResult) fail(prop, format string, args ...any) {
	r.failures = append(r.failures, checkFailure{prop, fmt.Sprintf(format, args...)})
}

// requireString reports a failure unless m[k] is a non-empty string or not yet known.
func (r *checkResult) requireString(typ, k string) {
	v, ok := r.inputs[resource.PropertyKey(k)]
	if !ok || v.IsNull() {
		r.fail(k, "missing required property '%s' (%s)", k, typ)
		return
	}
	v = unwrap(v)
	if unknown(v) {
		return
	}
	if !v.IsString() || v.StringValue() == "" {
		r.fail(k, "property '%s' must be a non-empty string", k)
	}
}

// checkResource validates news of resource type typ and fills in defaults.
func checkResource(typ string, news resource.PropertyMap) checkResult {
	r := checkResult{inputs: normalize(news)}
	switch typ {
	case tokContainer:
		checkContainer(&r)
	case tokVolume:
		// every input is optional: Docker names an unnamed volume itself
	case tokRemoteImage:
		r.requireString("RemoteImage", "name")
		setDefault(r.inputs, "keepLocally", resource.NewBoolProperty(false))
	default:
		r.fail("", "resource type %s is not implemented by the tizi docker stand-in provider", typ)
	}
	return r
}

func checkContainer(r *checkResult) {
	r.requireString("Container", "image")
	r.requireString("Container", "name")
	in := r.inputs
	setDefault(in, "restart", resource.NewStringProperty("no"))
	setDefault(in, "start", resource.NewBoolProperty(true))
	setDefault(in, "logDriver", resource.NewStringProperty("json-file"))
	setDefault(in, "mustRun", resource.NewBoolProperty(true))
	setDefault(in, "wait", resource.NewBoolProperty(false))
	setDefault(in, "waitTimeout", resource.NewNumberProperty(60))
	setDefault(in, "removeVolumes", resource.NewBoolProperty(true))

	if v := unwrap(in["restart"]); v.IsString() {
		switch v.StringValue() {
		case "no", "on-failure", "always", "unless-stopped":
		default:
			r.fail("restart", "restart must be one of no, on-failure, always, unless-stopped, not %q", v.StringValue())
		}
	}
	eachObject(in, "uploads", func(i int, o resource.PropertyMap) {
		if !present(o, "file") {
			r.fail(fmt.Sprintf("uploads[%d].file", i), "an upload needs 'file' (its path in the container)")
		}
		if !present(o, "content") && !present(o, "contentBase64") {
			if present(o, "source") {
				r.fail(fmt.Sprintf("uploads[%d].source", i), "uploads from 'source' are not implemented by the stand-in provider: use 'content' or 'contentBase64'")
			} else {
				r.fail(fmt.Sprintf("uploads[%d]", i), "an upload needs 'content' or 'contentBase64'")
			}
		}
	})
	eachObject(in, "volumes", func(i int, o resource.PropertyMap) {
		if !present(o, "containerPath") {
			r.fail(fmt.Sprintf("volumes[%d].containerPath", i), "a volume needs 'containerPath'")
		}
		if present(o, "fromContainer") {
			r.fail(fmt.Sprintf("volumes[%d].fromContainer", i), "'fromContainer' is not implemented by the stand-in provider")
		}
	})
	eachObject(in, "mounts", func(i int, o resource.PropertyMap) {
		if !present(o, "target") || !present(o, "type") {
			r.fail(fmt.Sprintf("mounts[%d]", i), "a mount needs 'target' and 'type'")
		}
	})
	eachObject(in, "ports", func(i int, o resource.PropertyMap) {
		if !present(o, "internal") {
			r.fail(fmt.Sprintf("ports[%d].internal", i), "a port needs 'internal'")
		}
		setDefault(o, "ip", resource.NewStringProperty("0.0.0.0"))
		setDefault(o, "protocol", resource.NewStringProperty("tcp"))
	})
	if hc, ok := in["healthcheck"]; ok {
		hc = unwrap(hc)
		if hc.IsObject() {
			o := hc.ObjectValue()
			if !present(o, "tests") {
				r.fail("healthcheck.tests", "a healthcheck needs 'tests'")
			}
			for _, k := range []string{"interval", "timeout", "startPeriod"} {
				if v := unwrap(o[resource.PropertyKey(k)]); v.IsString() {
					if _, err := time.ParseDuration(v.StringValue()); err != nil {
						r.fail("healthcheck."+k, "healthcheck.%s: %v", k, err)
					}
				}
			}
		}
	}
}

// eachObject calls f for every known object element of the array property k (in place: f
// may set defaults on the element).
func eachObject(m resource.PropertyMap, k string, f func(int, resource.PropertyMap)) {
	v, ok := m[resource.PropertyKey(k)]
	if !ok {
		return
	}
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsArray() {
		return
	}
	for i, e := range v.ArrayValue() {
		for e.IsSecret() {
			e = e.SecretValue().Element
		}
		if e.IsObject() {
			f(i, e.ObjectValue())
		}
	}
}

// diffResult is what Diff answers.
type diffResult struct {
	changed  []string // every input key that differs, sorted
	replaces []string // the subset that forces a replacement
}

// diffResource compares old inputs with new (checked) inputs of resource type typ. olds may be
// the old outputs when the engine sent no old inputs: output-only keys are then skipped.
func diffResource(typ string, olds, news resource.PropertyMap, ignore []string) diffResult {
	olds, news = normalize(olds), normalize(news)
	skip := map[string]bool{}
	for _, p := range ignore {
		skip[topLevel(p)] = true
	}
	for k := range computedOutputs[typ] {
		skip[k] = true
	}
	keys := map[string]bool{}
	for k := range olds {
		keys[string(k)] = true
	}
	for k := range news {
		keys[string(k)] = true
	}
	var res diffResult
	for k := range keys {
		if skip[k] {
			continue
		}
		o, n := olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]
		if sameValue(o, n) {
			continue
		}
		res.changed = append(res.changed, k)
		if replacesOn(typ, k) {
			res.replaces = append(res.replaces, k)
		}
	}
	sort.Strings(res.changed)
	sort.Strings(res.replaces)
	return res
}

// replacesOn says whether a change to input k of type typ needs a new resource. Docker can
// change almost nothing of an existing container, volume or pulled image in place.
func replacesOn(typ, k string) bool {
	switch typ {
	case tokContainer:
		return !providerOnly[k]
	case tokVolume:
		return true
	case tokRemoteImage:
		return k == "name" || k == "pullTriggers" || k == "platform"
	}
	return true
}

// sameValue compares two property values by content: secrets unwrapped, null equal to absent,
// anything not yet known different.
func sameValue(o, n resource.PropertyValue) bool {
	if unknown(n) || unknown(o) {
		return false
	}
	o, n = unwrap(o), unwrap(n)
	if o.IsNull() && n.IsNull() {
		return true
	}
	return o.DeepEquals(n)
}

func topLevel(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}
