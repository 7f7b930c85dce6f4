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
var minimalSchema = fmt.Sprintf(`{"name":%q,"version":%q,"description":"tizi's clean-room stand-in for pulumi-docker (only what tizi uses)"}`,
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
	res := checkResource(typeOf(req.GetType(), req.GetUrn()), news)
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

// oldInputs are the old inputs when the engine sent them, else the old outputs.
func oldInputs(req *pulumirpc.DiffRequest) *structpb.Struct {
	if req.GetOldInputs() != nil {
		return req.GetOldInputs()
	}
	return req.GetOlds()
}

func (p *dockerProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(oldInputs(req))
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	d := diffResource(typeOf(req.GetType(), req.GetUrn()), olds, news, req.GetIgnoreChanges())
	if len(d.changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	detailed := map[string]*pulumirpc.PropertyDiff{}
	replace := map[string]bool{}
	for _, k := range d.replaces {
		replace[k] = true
	}
	for _, k := range d.changed {
		kind := pulumirpc.PropertyDiff_UPDATE
		_, inOld := olds[resource.PropertyKey(k)]
		_, inNew := news[resource.PropertyKey(k)]
		switch {
		case !inOld:
			kind = pulumirpc.PropertyDiff_ADD
		case !inNew:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if replace[k] {
			kind = map[pulumirpc.PropertyDiff_Kind]pulumirpc.PropertyDiff_Kind{
				pulumirpc.PropertyDiff_ADD:    pulumirpc.PropertyDiff_ADD_REPLACE,
				pulumirpc.PropertyDiff_DELETE: pulumirpc.PropertyDiff_DELETE_REPLACE,
				pulumirpc.PropertyDiff_UPDATE: pulumirpc.PropertyDiff_UPDATE_REPLACE,
			}[kind]
		}
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:           d.changed,
		Replaces:        d.replaces,
		DetailedDiff:    detailed,
		HasDetailedDiff: true,
	}, nil
}

func (p *dockerProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	outs := news.Copy()
	id := ""
	if req.GetPreview() {
		previewOutputs(typ, outs)
	} else {
		cli, err := p.client()
		if err != nil {
			return nil, err
		}
		s := plain(news)
		switch typ {
		case tokContainer:
			if id, err = createContainer(ctx, cli, s); err != nil {
				return nil, err
			}
		case tokVolume:
			v, err := createVolume(ctx, cli, s)
			if err != nil {
				return nil, err
			}
			id = v.Name
			outs["name"] = resource.NewStringProperty(v.Name)
			outs["driver"] = resource.NewStringProperty(v.Driver)
			outs["mountpoint"] = resource.NewStringProperty(v.Mountpoint)
		case tokRemoteImage:
			imageID, digest, err := ensureImage(ctx, cli, p.host, s.str("name"))
			if err != nil {
				return nil, err
			}
			id = imageID + s.str("name")
			outs["imageId"] = resource.NewStringProperty(imageID)
			outs["repoDigest"] = resource.NewStringProperty(digest)
		default:
			return nil, status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
		}
	}
	props, err := marshal(outs)
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
		outs["repoDigest"] = unknown
	}
}

func (p *dockerProvider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	cli, err := p.client()
	if err != nil {
		return nil, err
	}
	id := req.GetId()
	s := plain(state)
	switch typ {
	case tokContainer:
		ok, err := containerExists(ctx, cli, id)
		if err != nil {
			return nil, fmt.Errorf("inspecting container %s: %w", id, err)
		}
		if !ok {
			return &pulumirpc.ReadResponse{Id: ""}, nil
		}
	case tokVolume:
		v, err := cli.VolumeInspect(ctx, id)
		if isNotFound(err) {
			return &pulumirpc.ReadResponse{Id: ""}, nil
		} else if err != nil {
			return nil, fmt.Errorf("inspecting volume %s: %w", id, err)
		}
		state["name"] = resource.NewStringProperty(v.Name)
		state["driver"] = resource.NewStringProperty(v.Driver)
		state["mountpoint"] = resource.NewStringProperty(v.Mountpoint)
	case tokRemoteImage:
		ref := s.str("imageId")
		if ref == "" {
			ref = s.str("name")
		}
		info, err := cli.ImageInspect(ctx, ref)
		if isNotFound(err) {
			return &pulumirpc.ReadResponse{Id: ""}, nil
		} else if err != nil {
			return nil, fmt.Errorf("inspecting image %s: %w", ref, err)
		}
		state["imageId"] = resource.NewStringProperty(info.ID)
		if s.str("name") != "" {
			state["repoDigest"] = resource.NewStringProperty(repoDigest(info.RepoDigests, s.str("name")))
		}
	default:
		return nil, status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: id, Properties: props, Inputs: req.GetInputs()}, nil
}

// Update applies changes that need no new resource: only provider-side settings (container
// waiting/stopping options, an image's keepLocally). Everything else is a replacement.
func (p *dockerProvider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	typ := typeOf(req.GetType(), req.GetUrn())
	outs := news.Copy()
	for k := range computedOutputs[typ] {
		if v, ok := olds[resource.PropertyKey(k)]; ok {
			outs[resource.PropertyKey(k)] = v
		}
	}
	if typ == tokVolume {
		for _, k := range []string{"name", "driver", "mountpoint"} {
			if v, ok := olds[resource.PropertyKey(k)]; ok && !present(news, k) {
				outs[resource.PropertyKey(k)] = v
			}
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
		name := s.str("name")
		if name == "" {
			name = req.GetId()
		}
		err = deleteVolume(ctx, cli, name)
	case tokRemoteImage:
		err = deleteImage(ctx, cli, s)
	default:
		err = status.Errorf(codes.Unimplemented, "resource type %s is not implemented by the tizi docker stand-in provider", typ)
	}
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
