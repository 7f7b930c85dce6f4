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
