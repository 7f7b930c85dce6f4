// Command pulumi-resource-docker is tizi's own stand-in for the pulumi-docker 4.0.0
// resource provider: it implements only the resources and properties tizi's edge target uses
// (Volume, RemoteImage, Container), for machines where the upstream provider cannot be built.
// See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Println(providerVersion)
		return
	}
	err := provider.Main(providerName, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newProvider(), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
