package main

// What the upstream Read functions write into the state, as pure functions of what Docker
// reports (unit-tested in readback_test.go). Create ends with Read upstream, so these values
// are also what Create returns, and what the next Diff compares the program's inputs with.

import (
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func strList(ss []string) resource.PropertyValue {
	arr := make([]resource.PropertyValue, 0, len(ss))
	for _, s := range ss {
		arr = append(arr, resource.NewStringProperty(s))
	}
	return resource.NewArrayProperty(arr)
}

func strMap(m map[string]string) resource.PropertyValue {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[resource.PropertyKey(k)] = resource.NewStringProperty(v)
	}
	return resource.NewObjectProperty(out)
}

func num[T ~int | ~int64 | ~uint32 | ~uint64](n T) resource.PropertyValue {
	return resource.NewNumberProperty(float64(n))
}

// containerReadback is what resourceDockerContainerRead (kreuzwerker v2.23.0
// internal/provider/resource_docker_container_funcs.go) sets from ContainerInspect, under the
// Pulumi property names. Attributes it does not set (envs, labels, volumes, uploads, start,
// mustRun, wait, destroyGraceSeconds, ...) keep the values the state already holds.
func containerReadback(c container.InspectResponse) resource.PropertyMap {
	m := resource.PropertyMap{}
	set := func(k string, v resource.PropertyValue) { m[resource.PropertyKey(k)] = v }
	running := c.State != nil && c.State.Running
	if !running && c.State != nil {
		set("exitCode", num(c.State.ExitCode))
	}
	if ns := c.NetworkSettings; ns != nil {
		ip, prefix, gw := ns.IPAddress, ns.IPPrefixLen, ns.Gateway //nolint:staticcheck // deprecated fields, read as upstream does
		var names []string
		for name := range ns.Networks {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) > 0 { // upstream takes the first network of a map (random order); sorted here
			n := ns.Networks[names[0]]
			ip, prefix, gw = n.IPAddress, n.IPPrefixLen, n.Gateway
		}
		set("ipAddress", resource.NewStringProperty(ip))
		set("ipPrefixLength", num(prefix))
		set("gateway", resource.NewStringProperty(gw))
		set("bridge", resource.NewStringProperty(ns.Bridge)) //nolint:staticcheck
		set("ports", flattenPorts(ns.Ports))
		var datas []resource.PropertyValue
		for _, name := range names {
			n := ns.Networks[name]
			datas = append(datas, resource.NewObjectProperty(resource.PropertyMap{
				"networkName":            resource.NewStringProperty(name),
				"ipAddress":              resource.NewStringProperty(n.IPAddress),
				"ipPrefixLength":         num(n.IPPrefixLen),
				"gateway":                resource.NewStringProperty(n.Gateway),
				"globalIpv6Address":      resource.NewStringProperty(n.GlobalIPv6Address),
				"globalIpv6PrefixLength": num(n.GlobalIPv6PrefixLen),
				"ipv6Gateway":            resource.NewStringProperty(n.IPv6Gateway),
			}))
		}
		set("networkDatas", resource.NewArrayProperty(datas))
	}
	set("name", resource.NewStringProperty(strings.TrimLeft(c.Name, "/")))
	set("image", resource.NewStringProperty(c.Image)) // the image ID (sha256:...), not the name
	if cfg := c.Config; cfg != nil {
		set("hostname", resource.NewStringProperty(cfg.Hostname))
		set("domainname", resource.NewStringProperty(cfg.Domainname))
		set("command", strList(cfg.Cmd))
		set("entrypoints", strList(cfg.Entrypoint))
		set("user", resource.NewStringProperty(cfg.User))
		set("workingDir", resource.NewStringProperty(cfg.WorkingDir))
		if hc := cfg.Healthcheck; hc != nil {
			set("healthcheck", resource.NewObjectProperty(resource.PropertyMap{
				"tests":       strList(hc.Test),
				"interval":    resource.NewStringProperty(hc.Interval.String()),
				"timeout":     resource.NewStringProperty(hc.Timeout.String()),
				"startPeriod": resource.NewStringProperty(hc.StartPeriod.String()),
				"retries":     num(hc.Retries),
			}))
		}
		set("tty", resource.NewBoolProperty(cfg.Tty))
		set("stdinOpen", resource.NewBoolProperty(cfg.OpenStdin))
		set("stopSignal", resource.NewStringProperty(cfg.StopSignal))
		if cfg.StopTimeout != nil {
			set("stopTimeout", num(*cfg.StopTimeout))
		} else {
			set("stopTimeout", num(0))
		}
	}
	if h := c.HostConfig; h != nil {
		set("rm", resource.NewBoolProperty(h.AutoRemove))
		set("readOnly", resource.NewBoolProperty(h.ReadonlyRootfs))
		set("dns", strList(h.DNS))
		set("dnsOpts", strList(h.DNSOptions))
		set("securityOpts", strList(h.SecurityOpt))
		set("dnsSearches", strList(h.DNSSearch))
		set("publishAllPorts", resource.NewBoolProperty(h.PublishAllPorts))
		set("restart", resource.NewStringProperty(string(h.RestartPolicy.Name)))
		set("maxRetryCount", num(h.RestartPolicy.MaximumRetryCount))
		set("init", resource.NewBoolProperty(h.Init != nil && *h.Init))
		if len(h.CapAdd) > 0 || len(h.CapDrop) > 0 {
			set("capabilities", resource.NewObjectProperty(resource.PropertyMap{
				"adds":  strList(h.CapAdd),
				"drops": strList(h.CapDrop),
			}))
		}
		set("runtime", resource.NewStringProperty(h.Runtime))
		var mounts []resource.PropertyValue
		for _, mt := range h.Mounts {
			mounts = append(mounts, resource.NewObjectProperty(resource.PropertyMap{
				"target":   resource.NewStringProperty(mt.Target),
				"source":   resource.NewStringProperty(mt.Source),
				"type":     resource.NewStringProperty(string(mt.Type)),
				"readOnly": resource.NewBoolProperty(mt.ReadOnly),
			}))
		}
		set("mounts", resource.NewArrayProperty(mounts))
		set("tmpfs", strMap(h.Tmpfs))
		var hosts []resource.PropertyValue
		for _, eh := range h.ExtraHosts {
			if host, ip, ok := strings.Cut(eh, ":"); ok {
				hosts = append(hosts, resource.NewObjectProperty(resource.PropertyMap{
					"host": resource.NewStringProperty(host), "ip": resource.NewStringProperty(ip),
				}))
			}
		}
		set("hosts", resource.NewArrayProperty(hosts))
		set("links", strList(h.Links))
		set("privileged", resource.NewBoolProperty(h.Privileged))
		set("memory", num(h.Memory/mib))
		if h.MemorySwap > 0 {
			set("memorySwap", num(h.MemorySwap/mib))
		} else {
			set("memorySwap", num(h.MemorySwap))
		}
		set("shmSize", num(h.ShmSize/mib))
		set("cpuShares", num(h.CPUShares))
		set("cpuSet", resource.NewStringProperty(h.CpusetCpus))
		set("logDriver", resource.NewStringProperty(h.LogConfig.Type))
		set("logOpts", strMap(h.LogConfig.Config))
		set("storageOpts", strMap(h.StorageOpt))
		set("networkMode", resource.NewStringProperty(string(h.NetworkMode)))
		set("pidMode", resource.NewStringProperty(string(h.PidMode)))
		set("usernsMode", resource.NewStringProperty(string(h.UsernsMode)))
		set("sysctls", strMap(h.Sysctls))
		set("ipcMode", resource.NewStringProperty(string(h.IpcMode)))
		set("groupAdds", strList(h.GroupAdd))
		if len(h.DeviceRequests) > 0 {
			set("gpus", resource.NewStringProperty("all"))
		}
	}
	return m
}

// flattenPorts mirrors flattenContainerPorts: one entry per host binding, sorted by port.
func flattenPorts(in nat.PortMap) resource.PropertyValue {
	keys := make([]string, 0, len(in))
	for p := range in {
		keys = append(keys, string(p))
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, _ := strconv.Atoi(strings.Split(keys[i], "/")[0])
		pj, _ := strconv.Atoi(strings.Split(keys[j], "/")[0])
		if pi != pj {
			return pi < pj
		}
		return keys[i] < keys[j]
	})
	var out []resource.PropertyValue
	for _, k := range keys {
		port, proto, _ := strings.Cut(k, "/")
		internal, _ := strconv.Atoi(port)
		for _, b := range in[nat.Port(k)] {
			external, _ := strconv.Atoi(b.HostPort)
			out = append(out, resource.NewObjectProperty(resource.PropertyMap{
				"internal": num(internal),
				"external": num(external),
				"ip":       resource.NewStringProperty(b.HostIP),
				"protocol": resource.NewStringProperty(proto),
			}))
		}
	}
	return resource.NewArrayProperty(out)
}

// volumeReadback is what resourceDockerVolumeRead (resource_docker_volume.go) sets.
func volumeReadback(v volume.Volume) resource.PropertyMap {
	return resource.PropertyMap{
		"name":       resource.NewStringProperty(v.Name),
		"labels":     labelSet(v.Labels),
		"driver":     resource.NewStringProperty(v.Driver),
		"driverOpts": strMap(v.Options),
		"mountpoint": resource.NewStringProperty(v.Mountpoint),
	}
}

// labelSet mirrors mapToLabelSet (helpers.go): [{label, value}], sorted by label here.
func labelSet(labels map[string]string) resource.PropertyValue {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]resource.PropertyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, resource.NewObjectProperty(resource.PropertyMap{
			"label": resource.NewStringProperty(k), "value": resource.NewStringProperty(labels[k]),
		}))
	}
	return resource.NewArrayProperty(out)
}

// networkReadback is what resourceDockerNetworkReadRefreshFunc (resource_docker_network_funcs.go)
// sets from NetworkInspect; ipamConfigs as flattenIpamConfigSpec writes them (only the
// non-empty fields).
func networkReadback(n network.Inspect) resource.PropertyMap {
	ipam := make([]resource.PropertyValue, 0, len(n.IPAM.Config))
	for _, c := range n.IPAM.Config {
		m := resource.PropertyMap{}
		for k, v := range map[string]string{"subnet": c.Subnet, "ipRange": c.IPRange, "gateway": c.Gateway} {
			if v != "" {
				m[resource.PropertyKey(k)] = resource.NewStringProperty(v)
			}
		}
		if len(c.AuxAddress) > 0 {
			m["auxAddress"] = strMap(c.AuxAddress)
		}
		ipam = append(ipam, resource.NewObjectProperty(m))
	}
	return resource.PropertyMap{
		"name":        resource.NewStringProperty(n.Name),
		"labels":      labelSet(n.Labels),
		"driver":      resource.NewStringProperty(n.Driver),
		"internal":    resource.NewBoolProperty(n.Internal),
		"attachable":  resource.NewBoolProperty(n.Attachable),
		"ingress":     resource.NewBoolProperty(n.Ingress),
		"ipv6":        resource.NewBoolProperty(n.EnableIPv6),
		"ipamDriver":  resource.NewStringProperty(n.IPAM.Driver),
		"scope":       resource.NewStringProperty(n.Scope),
		"options":     strMap(n.Options),
		"ipamConfigs": resource.NewArrayProperty(ipam),
	}
}

// imageReadback is what resourceDockerImageRead (resource_docker_image_funcs.go) sets: the
// image's full ID (sha256:...) as imageId and latest, and the repo digest.
func imageReadback(name, imageID string, repoDigests []string) resource.PropertyMap {
	return resource.PropertyMap{
		"imageId":    resource.NewStringProperty(imageID),
		"latest":     resource.NewStringProperty(imageID),
		"repoDigest": resource.NewStringProperty(determineRepoDigest(name, repoDigests)),
	}
}

// determineRepoDigest mirrors the function of that name (data_source_docker_image.go): none,
// the only one, the first that starts with the name up to its first ':', else the first.
func determineRepoDigest(name string, digests []string) string {
	switch len(digests) {
	case 0:
		return ""
	case 1:
		return digests[0]
	}
	prefix := name
	if i := strings.Index(name, ":"); i >= 0 {
		prefix = name[:i]
	}
	for _, d := range digests {
		if strings.HasPrefix(d, prefix) {
			return d
		}
	}
	return digests[0]
}

// mergeInto overwrites the keys of dst that src sets.
func mergeInto(dst, src resource.PropertyMap) resource.PropertyMap {
	for k, v := range src {
		dst[k] = v
	}
	return dst
}
