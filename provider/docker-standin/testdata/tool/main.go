// Command tool is the only program in the integration tests' image (built static, imported
// with `ENTRYPOINT ["/tool"]`): "sleep" runs until SIGTERM, "true" exits 0, "fail" exits 1,
// "cat FILE" prints a file.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	mode := "sleep"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "true":
		return
	case "fail":
		os.Exit(1)
	case "cat":
		b, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	default:
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
	}
}
