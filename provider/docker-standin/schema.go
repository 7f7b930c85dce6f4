package main

// The attribute table of each resource, transcribed by hand from the Terraform schema that
// pulumi-docker 4.0.0 bridges (kreuzwerker/terraform-provider-docker v2.23.0:
// internal/provider/resource_docker_container.go, resource_docker_volume.go,
// resource_docker_image.go, resource_docker_network.go), under the Pulumi (camelCase, pluralised) property names of the
// pulumi_docker 4.0.0 SDK. Only the flags that decide a diff are kept.

// attr is what a diff needs to know about one top-level property.
type attr struct {
	forceNew bool // ForceNew: a change replaces the resource
	computed bool // Optional+Computed: absent from the inputs means "keep what the state says"
	set      bool // TypeSet: element order does not matter
	output   bool // Computed only: never an input, never compared
	// emptyKeeps: a DiffSuppressFunc that treats "" as "no change" (user, working_dir)
	emptyKeeps bool
	// emptyIs: a DiffSuppressFunc that reads "" as this value (network_mode: "default")
	emptyIs string
}

var (
	fn  = attr{forceNew: true}
	fnc = attr{forceNew: true, computed: true}
	fns = attr{forceNew: true, set: true}
	upd = attr{}
	out = attr{output: true}
)

// containerSchema: docker_container. Not ForceNew (so an in-place update): rm, start, wait,
// wait_timeout, attach, logs, must_run, restart, max_retry_count, remove_volumes, tmpfs,
// destroy_grace_seconds, memory, memory_swap, cpu_shares, cpu_set, healthcheck,
// container_read_refresh_timeout_milliseconds, init. Of those, resourceDockerContainerUpdate
// sends only restart, max_retry_count, cpu_shares, memory, cpu_set, memory_swap to Docker; the
// rest only change the state.
var containerSchema = map[string]attr{
	"name":                fn,
	"rm":                  upd,
	"readOnly":            fn,
	"start":               upd,
	"wait":                upd,
	"waitTimeout":         upd,
	"attach":              upd,
	"logs":                upd,
	"mustRun":             upd,
	"exitCode":            out,
	"containerLogs":       out,
	"image":               fn,
	"hostname":            fnc,
	"domainname":          fn,
	"command":             fnc,
	"entrypoints":         fnc,
	"user":                {forceNew: true, emptyKeeps: true},
	"dns":                 fns,
	"dnsOpts":             fns,
	"dnsSearches":         fns,
	"publishAllPorts":     fn,
	"restart":             upd,
	"maxRetryCount":       upd,
	"workingDir":          {forceNew: true, emptyKeeps: true},
	"removeVolumes":       upd,
	"capabilities":        fns,
	"securityOpts":        {forceNew: true, computed: true, set: true},
	"runtime":             fnc,
	"stopSignal":          fnc,
	"stopTimeout":         fnc,
	"mounts":              fns,
	"volumes":             fns,
	"tmpfs":               upd,
	"ports":               fn,
	"hosts":               fns,
	"ulimits":             fns,
	"envs":                {forceNew: true, computed: true, set: true},
	"links":               fns,
	"ipAddress":           out,
	"ipPrefixLength":      out,
	"gateway":             out,
	"bridge":              out,
	"networkDatas":        out,
	"privileged":          fn,
	"devices":             fns,
	"destroyGraceSeconds": upd,
	"labels":              {forceNew: true, computed: true, set: true},
	"memory":              upd,
	"memorySwap":          upd,
	"shmSize":             fnc,
	"cpuShares":           upd,
	"cpuSet":              upd,
	"logDriver":           fnc,
	"logOpts":             fn,
	"networkAliases":      fns,
	"networkMode":         {forceNew: true, emptyIs: "default"},
	"networks":            fns,
	"networksAdvanced":    fns,
	"pidMode":             fn,
	"usernsMode":          fn,
	"uploads":             fns,
	"healthcheck":         {computed: true},
	"containerReadRefreshTimeoutMilliseconds": upd,
	"sysctls":     fn,
	"ipcMode":     fnc,
	"groupAdds":   fns,
	"init":        {computed: true},
	"tty":         fn,
	"stdinOpen":   fn,
	"storageOpts": fn,
	"gpus":        fn,
}

// containerUpdateKeys are the attributes resourceDockerContainerUpdate sends to Docker
// (ContainerUpdate) when any of them changed.
var containerUpdateKeys = []string{"restart", "maxRetryCount", "cpuShares", "memory", "cpuSet", "memorySwap"}

// volumeSchema: docker_volume has no Update function: every input is ForceNew.
var volumeSchema = map[string]attr{
	"name":       fnc,
	"labels":     fns,
	"driver":     fnc,
	"driverOpts": fn,
	"mountpoint": out,
}

// remoteImageSchema: docker_image. keep_locally and force_remove update in place.
var remoteImageSchema = map[string]attr{
	"name":         fn,
	"latest":       out,
	"imageId":      out,
	"repoDigest":   out,
	"keepLocally":  upd,
	"pullTrigger":  fn,
	"pullTriggers": fns,
	"output":       out,
	"forceRemove":  upd,
	"build":        fns, // every field of the build block is ForceNew
	"triggers":     fn,
}

// networkSchema: docker_network has no Update function: every input is ForceNew. `name` is
// Required upstream (autonamed by pulumi-docker); driver, options, internal and ipam_config
// are Optional+Computed; ipam_driver has the Default "default".
var networkSchema = map[string]attr{
	"name":           fn,
	"labels":         fns,
	"checkDuplicate": fn,
	"driver":         fnc,
	"options":        fnc,
	"internal":       fnc,
	"attachable":     fn,
	"ingress":        fn,
	"ipv6":           fn,
	"ipamDriver":     fn,
	"ipamConfigs":    {forceNew: true, computed: true, set: true},
	"scope":          out,
}

func schemaOf(typ string) map[string]attr {
	switch typ {
	case tokContainer:
		return containerSchema
	case tokVolume:
		return volumeSchema
	case tokRemoteImage:
		return remoteImageSchema
	case tokNetwork:
		return networkSchema
	}
	return nil
}

// nestedSets names fields inside nested blocks that are TypeSet (order does not matter):
// capabilities.add/drop, volume_options.labels of mounts.
var nestedSets = map[string]bool{"adds": true, "drops": true, "labels": true}
