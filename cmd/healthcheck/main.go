// Command healthcheck GETs a URL and exits 0 if the answer is 2xx within
// 2 s, else 1. It is the container image's HEALTHCHECK, as the distroless
// image has no shell, curl or wget:
//
//	healthcheck http://127.0.0.1:8080/readyz
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run checks args[0] and returns the exit code; the reason for a failure
// goes to stderr, which Docker keeps in the container's health log.
func run(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: healthcheck URL")
		return 1 // Docker reserves 2; anything but 0 is unhealthy
	}
	// No proxy from the environment: the check is of this container.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	resp, err := client.Get(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthcheck: %s: %s\n", args[0], resp.Status)
		return 1
	}
	return 0
}
