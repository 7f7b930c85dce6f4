package main

import (
	"archive/tar"
	"io"
	"testing"
)

func TestContainerConfig(t *testing.T) {
	s := spec{
		"name": "c", "image": "i", "user": "10001:10001", "readOnly": true, "restart": "always",
		"memory": 512.0, "memorySwap": 512.0, "cpuShares": 1024.0, "cpuSet": "0",
		"capabilities": map[string]any{"drops": []any{"ALL"}},
		"tmpfs":        map[string]any{"/tmp": "rw,size=16m"},
		"volumes":      []any{map[string]any{"volumeName": "keys", "containerPath": "/run/k", "readOnly": true}},
		"ports":        []any{map[string]any{"internal": 8080.0, "external": 18080.0, "ip": "127.0.0.1", "protocol": "tcp"}},
		"healthcheck":  map[string]any{"tests": []any{"CMD-SHELL", "true"}, "interval": "10s", "retries": 3.0},
		"labels":       []any{map[string]any{"label": "a", "value": "b"}},
		"stopTimeout":  25.0, "stopSignal": "SIGTERM",
	}
	cfg, host, err := containerConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if host.Memory != 512*mib || host.MemorySwap != 512*mib || host.CPUShares != 1024 || !host.ReadonlyRootfs {
		t.Errorf("host config %+v", host)
	}
	if len(host.Binds) != 1 || host.Binds[0] != "keys:/run/k:ro" {
		t.Errorf("binds %v", host.Binds)
	}
	b := host.PortBindings["8080/tcp"]
	if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "18080" {
		t.Errorf("port bindings %v", host.PortBindings)
	}
	if cfg.Healthcheck.Interval.Seconds() != 10 || cfg.Healthcheck.Retries != 3 || cfg.Labels["a"] != "b" || *cfg.StopTimeout != 25 {
		t.Errorf("config %+v", cfg)
	}
}

func TestUploadTar(t *testing.T) {
	dir, body, err := uploadTar(spec{"file": "/run/secrets/tizi/api-key-0", "content": "k1", "executable": false})
	if err != nil {
		t.Fatal(err)
	}
	if dir != "/run/secrets/tizi" {
		t.Errorf("dir %s", dir)
	}
	tr := tar.NewReader(body)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(tr)
	if h.Name != "api-key-0" || h.Mode != 0o644 || h.Uid != 0 || string(data) != "k1" {
		t.Errorf("header %+v data %q", h, data)
	}
	_, body, _ = uploadTar(spec{"file": "/x/run.sh", "contentBase64": "ZWNobw==", "executable": true})
	tr = tar.NewReader(body)
	h, _ = tr.Next()
	data, _ = io.ReadAll(tr)
	if h.Mode != 0o744 || string(data) != "echo" {
		t.Errorf("executable upload %+v %q", h, data)
	}
	if _, _, err := uploadTar(spec{"file": "relative", "content": "x"}); err == nil {
		t.Error("relative path accepted")
	}
}

func TestDemux(t *testing.T) {
	raw := append([]byte{1, 0, 0, 0, 0, 0, 0, 3}, []byte("abc")...)
	raw = append(raw, append([]byte{2, 0, 0, 0, 0, 0, 0, 2}, []byte("de")...)...)
	if got := demux(raw); got != "abcde" {
		t.Errorf("demux %q", got)
	}
}
