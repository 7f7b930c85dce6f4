package main

// The Pulumi resource provider gRPC service: protocol plumbing around logic.go and docker.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/docker/docker/client"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil/rpcerror"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	providerName    = "docker"
	providerVersion = "4.0.0"
)

// minimalSchema is a valid package schema naming the package; the SDK is pinned, so the
// engine needs no resource definitions from here.
var minimalSchema = fmt.Sprintf(`{"name":%q,"version":%q,"description":"tizi's own stand-in for pulumi-docker (only what tizi uses)"}`,
	providerName, providerVersion)

type dockerProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	mu      sync.Mutex
	host    string
	sshOpts []string
	cli     *client.Client
}

func newProvider() *dockerProvider {
	return &dockerProvider{host: defaultHostFromEnv()}
}

func defaultHostFromEnv() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return defaultHost
}

// client returns the Docker client for the configured host, made on first use.
func (p *dockerProvider) client() (*client.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cli != nil {
		return p.cli, nil
	}
	cli, err := newDockerClient(p.host, p.sshOpts)
	if err != nil {
		return nil, err
	}
	p.cli = cli
	return cli, nil
}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true, KeepSecrets: true})
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true, KeepSecrets: true})
}

// plain turns known inputs into plain Go values (secrets unwrapped).
func plain(m resource.PropertyMap) spec {
	return spec(unwrap(resource.NewObjectProperty(normalize(m))).ObjectValue().Mappable())
}

func typeOf(typ, urn string) string {
	if typ != "" {
		return typ
	}
	return string(resource.URN(urn).Type())
}

// --- plugin identity ------------------------------------------------------------------------

func (p *dockerProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: providerVersion}, nil
}

func (p *dockerProvider) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: minimalSchema}, nil
}

func (p *dockerProvider) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: false, AcceptResources: false, AcceptOutputs: false}, nil
}

func (p *dockerProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *dockerProvider) Attach(context.Context, *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *dockerProvider) GetMapping(context.Context, *pulumirpc.GetMappingRequest) (*pulumirpc.GetMappingResponse, error) {
	return &pulumirpc.GetMappingResponse{}, nil
}

func (p *dockerProvider) GetMappings(context.Context, *pulumirpc.GetMappingsRequest) (*pulumirpc.GetMappingsResponse, error) {
	return &pulumirpc.GetMappingsResponse{}, nil
}

// --- provider configuration -----------------------------------------------------------------

// configValue reads one provider setting from the args, else from the variables
// ("docker:config:host" or "docker:host").
func configValue(args resource.PropertyMap, vars map[string]string, key string) (resource.PropertyValue, bool) {
	if v, ok := args[resource.PropertyKey(key)]; ok && !v.IsNull() {
		return unwrap(v), true
	}
	for _, k := range []string{providerName + ":config:" + key, providerName + ":" + key} {
		if s, ok := vars[k]; ok {
			return resource.NewStringProperty(s), true
		}
	}
	return resource.PropertyValue{}, false
}

// stringList reads a list that a client may send as a list or as a JSON-encoded string.
func stringList(v resource.PropertyValue) []string {
	if v.IsString() {
		var out []string
		if json.Unmarshal([]byte(v.StringValue()), &out) == nil {
			return out
		}
		return strings.Fields(v.StringValue())
	}
	var out []string
	if v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e = unwrap(e); e.IsString() {
				out = append(out, e.StringValue())
			}
		}
	}
	return out
}

func (p *dockerProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: req.GetNews()}
	if v, ok := news["host"]; ok {
		if v = unwrap(v); v.IsString() {
			if err := validateHost(v.StringValue()); err != nil {
				resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: "host", Reason: err.Error()})
			}
		}
	}
	return resp, nil
}

func (p *dockerProvider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(oldInputs(req))
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, k := range unionKeys(olds, news) {
		if !sameValue(olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]) {
			diffs = append(diffs, k)
		}
	}
	if len(diffs) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: diffs}, nil
}

func unionKeys(a, b resource.PropertyMap) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []resource.PropertyMap{a, b} {
		for k := range m {
			if !seen[string(k)] && !strings.HasPrefix(string(k), "__") {
				seen[string(k)] = true
				out = append(out, string(k))
			}
		}
	}
	return out
}

func (p *dockerProvider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := configValue(args, req.GetVariables(), "host"); ok && v.IsString() && v.StringValue() != "" {
		if err := validateHost(v.StringValue()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		p.host = v.StringValue()
	}
	if v, ok := configValue(args, req.GetVariables(), "sshOpts"); ok {
		p.sshOpts = stringList(v)
	}
	p.cli = nil
	// acceptSecrets false: the engine strips secrets from what it sends and marks outputs
	// secret again wherever the matching input was secret.
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: true}, nil
}

// --- resources -------------------------------------------------------------------------------

func (p *dockerProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	res := checkResource(typeOf(req.GetType(), req.GetUrn()), req.GetUrn(), req.GetRandomSeed(), olds, news)
	inputs, err := marshal(res.inputs)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: inputs}
	for _, f := range res.failures {
		resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: f.property, Reason: f.reason})
	}
	return resp, nil
}

// oldState is what the bridge diffs against: the old outputs (the state), falling back to the
// old inputs when the engine sent no outputs.
func oldState(req *pulumirpc.DiffRequest) *structpb.Struct {
	if len(req.GetOlds().GetFields()) > 0 {
		return req.GetOlds()
	}
	return req.GetOldInputs()
}

// oldInputs are the old inputs when the engine sent them, else the old outputs.
func oldInputs(req *pulumirpc.DiffRequest) *structpb.Struct {
	if req.GetOldInputs() != nil {
		return req.GetOldInputs()
	}
	return req.GetOlds()
}

// diffResponse renders a diffResult as the bridge does (pulumi-terraform-bridge
// pkg/tfbridge/provider.go Diff): changed keys, replacing keys, detailed diff, and
// deleteBeforeReplace when the resource asks for it.
func diffResponse(d diffResult, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	if len(d.changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	detailed := map[string]*pulumirpc.PropertyDiff{}
	replace := map[string]bool{}
	for _, k := range d.replaces {
		replace[k] = true
	}
	for _, k := range d.changed {
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case !present(olds, k):
			kind = pulumirpc.PropertyDiff_ADD
		case !present(news, k):
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if replace[k] {
			kind = map[pulumirpc.PropertyDiff_Kind]pulumirpc.PropertyDiff_Kind{
				pulumirpc.PropertyDiff_ADD:    pulumirpc.PropertyDiff_ADD_REPLACE,
				pulumirpc.PropertyDiff_DELETE: pulumirpc.PropertyDiff_DELETE_REPLACE,
				pulumirpc.PropertyDiff_UPDATE: pulumirpc.PropertyDiff_UPDATE_REPLACE,
			}[kind]
		}
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind}
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:               d.changed,
		Replaces:            d.replaces,
		DeleteBeforeReplace: d.deleteBeforeReplace,
		DetailedDiff:        detailed,
		HasDetailedDiff:     true,
	}
}

func (p *dockerProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(oldState(req))
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	d := diffResource(typeOf(req.GetType(), req.GetUrn()), olds, news, req.GetIgnoreChanges())
	return diffResponse(d, normalize(olds), normalize(news)), nil
}

// initError is the bridge's initializationError: the resource exists (id) but the operation
// failed; the engine records it with its outputs and the error as a partial result.
func initError(id string, outs resource.PropertyMap, err error) error {
	props, merr := marshal(stateOnly(outs))
	if merr != nil {
		return err
	}
	return rpcerror.WithDetails(rpcerror.New(codes.Unknown, err.Error()),
		&pulumirpc.ErrorResourceInitFailed{Id: id, Properties: props, Reasons: []string{err.Error()}})
}

// stateOnly drops the bookkeeping keys (__defaults) that belong to inputs, not to the state.
func stateOnly(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		if !strings.HasPrefix(string(k), "__") {
			out[k] = v
		}
	}
	return out
}

func (p *dockerProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var id string
	var outs resource.PropertyMap
	if req.GetPreview() {
		outs = news.Copy()
		previewOutputs(typ, outs)
	} else {
		cli, err := p.client()
		if err != nil {
			return nil, err
		}
		s := plain(news)
		switch typ {
		case tokContainer:
			id, outs, err = createContainer(ctx, cli, s)
			if err == nil && id == "" {
				// upstream's Read removed the container (not running, mustRun, no container
				// started yet by this process) and reported no error: the bridge then fails so
				err = fmt.Errorf("expected non-nil error with nil state during Create of %s "+
					"(the container is not running and mustRun is true, so the provider removed it again)", req.GetUrn())
			}
		case tokVolume:
			id, outs, err = createVolume(ctx, cli, s)
		case tokRemoteImage:
			id, outs, err = createImage(ctx, cli, s)
		case tokNetwork:
			id, outs, err = createNetwork(ctx, cli, s)
			if err == nil && id == "" { // Read found it gone: the bridge fails the same way
				err = fmt.Errorf("expected non-nil error with nil state during Create of %s (the network vanished before it was read)", req.GetUrn())
			}
		default:
			return nil, status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
		}
		if err != nil {
			if id == "" {
				return nil, err
			}
			if outs == nil {
				outs = news.Copy()
			}
			// a partially created resource: the bridge reports it with its ID and state
			return nil, initError(id, outs, fmt.Errorf("creating %s: %w", req.GetUrn(), err))
		}
	}
	props, err := marshal(stateOnly(outs))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// previewOutputs marks what only Docker can say as not yet known.
func previewOutputs(typ string, outs resource.PropertyMap) {
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	switch typ {
	case tokVolume:
		outs["mountpoint"] = unknown
		if !present(outs, "name") {
			outs["name"] = unknown
		}
		if !present(outs, "driver") {
			outs["driver"] = unknown
		}
	case tokRemoteImage:
		outs["imageId"] = unknown
		outs["latest"] = unknown
		outs["repoDigest"] = unknown
	case tokNetwork:
		outs["scope"] = unknown
		for _, k := range []string{"driver", "options", "internal", "ipamConfigs"} {
			if !present(outs, k) {
				outs[resource.PropertyKey(k)] = unknown
			}
		}
	}
}

func (p *dockerProvider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	oldIns, err := unmarshal(req.GetInputs())
	if err != nil {
		return nil, err
	}
	cli, err := p.client()
	if err != nil {
		return nil, err
	}
	id := req.GetId()
	s := plain(state)
	var outs resource.PropertyMap
	switch typ {
	case tokContainer:
		id, outs, err = readContainer(ctx, cli, id, s)
	case tokVolume:
		id, outs, err = readVolume(ctx, cli, id, s)
	case tokRemoteImage:
		id, outs, err = readImage(ctx, cli, id, s)
	case tokNetwork:
		id, outs, err = readNetwork(ctx, cli, id, s)
	default:
		return nil, status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("refreshing %s: %w", req.GetUrn(), err)
	}
	if id == "" {
		return &pulumirpc.ReadResponse{}, nil // gone
	}
	outs = stateOnly(outs)
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	inputs, err := marshal(refreshedInputs(oldIns, outs))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: id, Properties: props, Inputs: inputs}, nil
}

// Update applies an in-place change as the upstream Update functions do: a Container sends
// restart/maxRetryCount/cpuShares/memory/cpuSet/memorySwap to Docker (the other in-place
// attributes only change the state); a RemoteImage looks the image up again (maybe pulling).
// The new state is the old one with the changed attributes applied.
func (p *dockerProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	typ := typeOf(req.GetType(), req.GetUrn())
	outs := stateOnly(updatedState(typ, olds, news))
	if !req.GetPreview() {
		cli, err := p.client()
		if err != nil {
			return nil, err
		}
		id := req.GetId()
		switch typ {
		case tokContainer:
			changed := diffResource(typ, olds, news, req.GetIgnoreChanges()).changed
			err = updateContainer(ctx, cli, id, changed, plain(news))
		case tokRemoteImage:
			var read resource.PropertyMap
			if id, read, err = updateImage(ctx, cli, id, plain(outs)); err == nil && id != "" {
				outs = stateOnly(read)
			}
		}
		if err != nil {
			return nil, initError(req.GetId(), outs, fmt.Errorf("updating %s: %w", req.GetUrn(), err))
		}
	}
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *dockerProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	cli, err := p.client()
	if err != nil {
		return nil, err
	}
	s := plain(state)
	switch typ {
	case tokContainer:
		err = deleteContainer(ctx, cli, req.GetId(), s)
	case tokVolume:
		err = deleteVolume(ctx, cli, req.GetId())
	case tokRemoteImage:
		err = deleteImage(ctx, cli, s)
	case tokNetwork:
		err = deleteNetwork(ctx, cli, req.GetId())
	default:
		err = status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
	}
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
