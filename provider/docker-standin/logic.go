package main

// Pure Check/Diff logic on property maps: no Docker, no gRPC, unit-tested in check_diff_test.go.

import (
	"encoding/json"
	"fmt"
	"reflect"
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
	tokNetwork     = "docker:index/network:Network"
)

// mapValued names properties whose object keys are user data (paths, option names), not
// property names: their keys are never rewritten.
var mapValued = map[string]bool{
	"tmpfs": true, "logOpts": true, "driverOpts": true, "sysctls": true, "storageOpts": true, "triggers": true,
	"options": true, "auxAddress": true,
}

// defaultsKey is where the bridge (pulumi-terraform-bridge pkg/tfbridge/schema.go, defaultsKey)
// records which inputs Check filled in from defaults; it decides whether a name was given.
const defaultsKey = "__defaults"

// camel turns snake_case into camelCase ("volume_name" -> "volumeName"); camelCase is unchanged.
func camel(s string) string {
	if !strings.Contains(s, "_") || strings.HasPrefix(s, "__") {
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
	defaults []string // top-level keys filled in from defaults (stored as __defaults)
}

type checkFailure struct{ property, reason string }

func (r *checkResult) fail(prop, format string, args ...any) {
	r.failures = append(r.failures, checkFailure{prop, fmt.Sprintf(format, args...)})
}

// def fills in a top-level default and records it, as the bridge's MakeTerraformInputs does.
func (r *checkResult) def(k string, v resource.PropertyValue) {
	if !present(r.inputs, k) {
		r.inputs[resource.PropertyKey(k)] = v
		r.defaults = append(r.defaults, k)
	}
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

// defaulted says whether m's __defaults list names k.
func defaulted(m resource.PropertyMap, k string) bool {
	d, ok := m[defaultsKey]
	if !ok || !d.IsArray() {
		return false
	}
	for _, e := range d.ArrayValue() {
		if e.IsString() && e.StringValue() == k {
			return true
		}
	}
	return false
}

// autoname fills in `name` like pulumi-docker 4.0.0 does for every resource whose Terraform
// schema has an input `name` and no field override (provider/resources.go
// prov.SetAutonaming(255, "-"); bridge pkg/tfbridge/names.go AutoName/FromName): the URN's
// name, "-", 7 random hex characters from the engine's random seed; an earlier autoname is kept.
func (r *checkResult) autoname(urn string, seed []byte, olds resource.PropertyMap) {
	if present(r.inputs, "name") {
		return
	}
	if present(olds, "name") && defaulted(olds, "name") {
		r.def("name", olds["name"])
		return
	}
	prefix := "resource"
	if urn != "" {
		prefix = resource.URN(urn).Name()
	}
	name, err := resource.NewUniqueName(seed, prefix+"-", 7, 255, nil)
	if err != nil {
		r.fail("name", "%v", err)
		return
	}
	r.def("name", resource.NewStringProperty(name))
}

// checkResource validates the news of resource type typ and fills in the defaults the upstream
// provider's Check fills in (the Terraform schema's Default values and the autonamed name),
// listing the filled-in keys under __defaults.
func checkResource(typ, urn string, seed []byte, olds, news resource.PropertyMap) checkResult {
	r := checkResult{inputs: normalize(news)}
	olds = normalize(olds)
	switch typ {
	case tokContainer:
		r.autoname(urn, seed, olds)
		checkContainer(&r)
	case tokVolume:
		r.autoname(urn, seed, olds)
	case tokNetwork:
		r.autoname(urn, seed, olds)
		r.def("ipamDriver", resource.NewStringProperty("default")) // resource_docker_network.go Default
	case tokRemoteImage:
		r.requireString("RemoteImage", "name")
	default:
		r.fail("", "resource type %s is not implemented by the tizi docker stand-in provider", typ)
		return r
	}
	sort.Strings(r.defaults)
	ds := make([]resource.PropertyValue, len(r.defaults))
	for i, k := range r.defaults {
		ds[i] = resource.NewStringProperty(k)
	}
	r.inputs[defaultsKey] = resource.NewArrayProperty(ds)
	return r
}

func checkContainer(r *checkResult) {
	r.requireString("Container", "image")
	in := r.inputs
	// the Default values of resource_docker_container.go
	r.def("attach", resource.NewBoolProperty(false))
	r.def("containerReadRefreshTimeoutMilliseconds", resource.NewNumberProperty(15000))
	r.def("logs", resource.NewBoolProperty(false))
	r.def("mustRun", resource.NewBoolProperty(true))
	r.def("readOnly", resource.NewBoolProperty(false))
	r.def("removeVolumes", resource.NewBoolProperty(true))
	r.def("restart", resource.NewStringProperty("no"))
	r.def("rm", resource.NewBoolProperty(false))
	r.def("start", resource.NewBoolProperty(true))
	r.def("stdinOpen", resource.NewBoolProperty(false))
	r.def("tty", resource.NewBoolProperty(false))
	r.def("wait", resource.NewBoolProperty(false))
	r.def("waitTimeout", resource.NewNumberProperty(60))

	for _, k := range []string{"attach", "logs"} {
		if v := unwrap(in[resource.PropertyKey(k)]); v.IsBool() && v.BoolValue() {
			r.fail(k, "'%s' is not implemented by the stand-in provider", k)
		}
	}
	for _, k := range []string{"networks", "networksAdvanced", "networkAliases", "devices", "gpus"} {
		if present(in, k) {
			r.fail(k, "'%s' is not implemented by the stand-in provider", k)
		}
	}
	if v := unwrap(in["restart"]); v.IsString() {
		switch v.StringValue() {
		case "no", "on-failure", "always", "unless-stopped":
		default:
			r.fail("restart", "restart must be one of no, on-failure, always, unless-stopped, not %q", v.StringValue())
		}
	}
	eachObject(in, "uploads", func(i int, o resource.PropertyMap) {
		setDefault(o, "executable", resource.NewBoolProperty(false))
		if !present(o, "file") {
			r.fail(fmt.Sprintf("uploads[%d].file", i), "an upload needs 'file' (its path in the container)")
		}
		n := 0
		for _, k := range []string{"content", "contentBase64", "source"} {
			if v := unwrap(o[resource.PropertyKey(k)]); !v.IsNull() && !(v.IsString() && v.StringValue() == "") {
				n++
			}
		}
		switch {
		case present(o, "source"):
			r.fail(fmt.Sprintf("uploads[%d].source", i), "uploads from 'source' are not implemented by the stand-in provider: use 'content' or 'contentBase64'")
		case n == 0:
			r.fail(fmt.Sprintf("uploads[%d]", i), "an upload needs 'content' or 'contentBase64'")
		case n > 1:
			r.fail(fmt.Sprintf("uploads[%d]", i), "only one of 'content', 'content_base64', or 'source' can be set")
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
		for hc.IsSecret() {
			hc = hc.SecretValue().Element
		}
		if hc.IsObject() {
			o := hc.ObjectValue()
			if !present(o, "tests") {
				r.fail("healthcheck.tests", "a healthcheck needs 'tests'")
			}
			for _, k := range []string{"interval", "timeout", "startPeriod"} {
				setDefault(o, k, resource.NewStringProperty("0s"))
				if v := unwrap(o[resource.PropertyKey(k)]); v.IsString() {
					if d, err := time.ParseDuration(v.StringValue()); err != nil || d < 0 {
						r.fail("healthcheck."+k, "healthcheck.%s: %q is not a duration >= 0", k, v.StringValue())
					}
				}
			}
			setDefault(o, "retries", resource.NewNumberProperty(0))
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
	changed             []string // every input key that differs, sorted
	replaces            []string // the subset that forces a replacement (ForceNew)
	deleteBeforeReplace bool
}

// diffResource compares the old state (the outputs the last Create/Read/Update wrote, which is
// what the bridge's Diff hands Terraform: pulumi-terraform-bridge pkg/tfbridge/provider.go
// Diff, MakeTerraformState(olds)) with the new checked inputs, with Terraform's rules:
//   - an input absent from the program: no change for an Optional+Computed attribute, nor when
//     the state holds the zero value; otherwise a change (the value is removed);
//   - sets compare without order, nested zero values equal absent ones;
//   - ForceNew attributes replace, the others update in place.
//
// deleteBeforeReplace mirrors the bridge's DiffResponse: true for a replacement of a resource
// mapped with DeleteBeforeReplace (Container, pulumi-docker v4.0.0 provider/resources.go), or
// whose autonameable `name` was given by the program (nameRequiresDeleteBeforeReplace: Volume,
// Network).
func diffResource(typ string, olds, news resource.PropertyMap, ignore []string) diffResult {
	sch := schemaOf(typ)
	olds, news = normalize(olds), normalize(news)
	skip := map[string]bool{}
	for _, p := range ignore {
		skip[topLevel(p)] = true
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
		if skip[k] || strings.HasPrefix(k, "__") || k == "id" {
			continue
		}
		a, known := sch[k]
		if !known {
			a = attr{forceNew: true} // not in the schema: Terraform would refuse it; replace
		}
		if a.output {
			continue
		}
		if !attrChanged(k, a, olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]) {
			continue
		}
		res.changed = append(res.changed, k)
		if a.forceNew {
			res.replaces = append(res.replaces, k)
		}
	}
	sort.Strings(res.changed)
	sort.Strings(res.replaces)
	if len(res.replaces) > 0 {
		switch typ {
		case tokContainer:
			res.deleteBeforeReplace = true
		case tokVolume, tokNetwork:
			_, hasDefaults := news[defaultsKey]
			res.deleteBeforeReplace = hasDefaults && present(news, "name") && !defaulted(news, "name")
		}
	}
	return res
}

// attrChanged applies Terraform's rules to one top-level attribute: o from the state, n from
// the program.
func attrChanged(k string, a attr, o, n resource.PropertyValue) bool {
	if unknown(n) {
		return true
	}
	o, n = unwrap(o), unwrap(n)
	if n.IsNull() {
		if a.computed || a.emptyKeeps {
			return false
		}
		return !isZero(o)
	}
	if a.emptyKeeps && n.IsString() && n.StringValue() == "" {
		return false
	}
	if a.emptyIs != "" {
		if o.IsNull() || (o.IsString() && o.StringValue() == "") {
			o = resource.NewStringProperty(a.emptyIs)
		}
		if n.IsString() && n.StringValue() == "" {
			n = resource.NewStringProperty(a.emptyIs)
		}
	}
	if o.IsNull() && isZero(n) {
		return false
	}
	if k == "ports" {
		return portsChanged(o, n)
	}
	return !reflect.DeepEqual(canon(o, a.set), canon(n, a.set))
}

// isZero: null, false, 0, "", an empty list, or an object of zero values.
func isZero(v resource.PropertyValue) bool {
	v = unwrap(v)
	switch {
	case v.IsNull():
		return true
	case v.IsBool():
		return !v.BoolValue()
	case v.IsNumber():
		return v.NumberValue() == 0
	case v.IsString():
		return v.StringValue() == ""
	case v.IsArray():
		return len(v.ArrayValue()) == 0
	case v.IsObject():
		for _, e := range v.ObjectValue() {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}

// canon is a value as Terraform compares it: nested zero values dropped, sets sorted.
func canon(v resource.PropertyValue, set bool) any {
	v = unwrap(v)
	switch {
	case v.IsNull():
		return nil
	case v.IsArray():
		if len(v.ArrayValue()) == 0 {
			return nil
		}
		out := make([]any, 0, len(v.ArrayValue()))
		for _, e := range v.ArrayValue() {
			out = append(out, canon(e, false))
		}
		if set {
			sort.Slice(out, func(i, j int) bool { return jsonOf(out[i]) < jsonOf(out[j]) })
		}
		return out
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			if isZero(e) {
				continue
			}
			out[string(k)] = canon(e, nestedSets[string(k)])
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v.V
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// portsChanged mirrors the ports comparison of resource_docker_container.go
// (suppressIfPortsDidNotChangeForMigrationV0ToV1): same length, and every old port found among
// the new ones by internal port with the same protocol, external port and IP. An external port
// the program leaves out is Computed: not compared.
func portsChanged(o, n resource.PropertyValue) bool {
	objects := func(v resource.PropertyValue) []resource.PropertyMap {
		var out []resource.PropertyMap
		if v = unwrap(v); v.IsArray() {
			for _, e := range v.ArrayValue() {
				if e.IsObject() {
					out = append(out, e.ObjectValue())
				}
			}
		}
		return out
	}
	olds, news := objects(o), objects(n)
	if len(olds) != len(news) {
		return true
	}
	str := func(m resource.PropertyMap, k string) string {
		return fmt.Sprint(canon(m[resource.PropertyKey(k)], false))
	}
	for _, op := range olds {
		found := false
		for _, np := range news {
			if str(np, "internal") != str(op, "internal") {
				continue
			}
			if str(np, "protocol") != str(op, "protocol") {
				other := false
				for _, q := range news {
					if str(q, "internal") == str(op, "internal") && str(q, "protocol") == str(op, "protocol") {
						other = true
					}
				}
				if other {
					continue
				}
				return true
			}
			if present(np, "external") && str(np, "external") != str(op, "external") {
				return true
			}
			if str(np, "ip") != str(op, "ip") {
				return true
			}
			found = true
			break
		}
		if !found {
			return true
		}
	}
	return false
}

// updatedState is the state after an in-place update: Terraform applies the diff to the old
// state (schema.Resource.Apply), so changed attributes take the new values and every other
// attribute keeps what the state held.
func updatedState(typ string, olds, news resource.PropertyMap) resource.PropertyMap {
	outs := normalize(olds).Copy()
	news = normalize(news)
	for _, k := range diffResource(typ, olds, news, nil).changed {
		if v, ok := news[resource.PropertyKey(k)]; ok && !v.IsNull() {
			outs[resource.PropertyKey(k)] = v
		} else {
			delete(outs, resource.PropertyKey(k))
		}
	}
	return outs
}

// refreshedInputs are the inputs a refresh reports, as the bridge's Read computes them
// (pkg/tfbridge/schema.go extractInputsFromOutputs with isRefresh): every old input that is
// still in the state takes the state's value (lists trimmed to the shorter length, objects key
// by key); an input the state lacks is dropped.
func refreshedInputs(oldInputs, outs resource.PropertyMap) resource.PropertyMap {
	v, _ := extractInputs(resource.NewObjectProperty(normalize(oldInputs).Copy()), resource.NewObjectProperty(outs))
	return v.ObjectValue()
}

func extractInputs(oldInput, state resource.PropertyValue) (resource.PropertyValue, bool) {
	switch {
	case oldInput.IsArray() && state.IsArray():
		olds, news := append([]resource.PropertyValue(nil), oldInput.ArrayValue()...), state.ArrayValue()
		same := true
		n := min(len(olds), len(news))
		if len(olds) > len(news) {
			same = false
		}
		for i := 0; i < n; i++ {
			var s bool
			olds[i], s = extractInputs(olds[i], news[i])
			same = same && s
		}
		return resource.NewArrayProperty(olds[:n]), same
	case oldInput.IsObject() && state.IsObject():
		olds, news := oldInput.ObjectValue().Copy(), state.ObjectValue()
		keep := map[string]bool{}
		_, hasDefaults := olds[defaultsKey]
		if hasDefaults {
			for _, e := range olds[defaultsKey].ArrayValue() {
				if e.IsString() {
					keep[e.StringValue()] = true
				}
			}
		}
		same := true
		for k, ov := range olds {
			if k == defaultsKey {
				continue
			}
			s := false
			if nv, ok := news[k]; ok {
				olds[k], s = extractInputs(ov, nv)
			} else {
				delete(olds, k)
			}
			if !s {
				same = false
				delete(keep, string(k))
			}
		}
		if hasDefaults {
			ks := make([]string, 0, len(keep))
			for k := range keep {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			ds := make([]resource.PropertyValue, len(ks))
			for i, k := range ks {
				ds[i] = resource.NewStringProperty(k)
			}
			olds[defaultsKey] = resource.NewArrayProperty(ds)
		}
		return resource.NewObjectProperty(olds), same || !hasDefaults
	default:
		return state, unwrap(oldInput).DeepEquals(unwrap(state))
	}
}

func topLevel(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
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
