package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"llamago/engine"
	"llamago/internal/cliflag"
	"llamago/server"
)

// shutdownGrace is how long in-flight requests may run after SIGTERM
// before they are cancelled.
const shutdownGrace = 30 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "-m FILE [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX] [--api-key KEY]", stderr)
	modelPath := fs.String("m", "", "model `file` (GGUF)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 8080, "port to listen on (0: any free one)")
	parallel := fs.Int("parallel", 4, "sequences decoded together")
	ctxSize := fs.Int("c", 0, "context size of each sequence (0: the model's, at most 4096)")
	threads := fs.Int("t", 0, "threads (0: the number of physical cores)")
	hugePages := fs.Bool("huge-pages", false, "first have the page cache hold the model file in 2 MiB pages (faster decoding; reads a file just written once more)")
	backend := fs.String("backend", "cpu", "backend: cpu, oracle or cuda")
	apiKey := fs.String("api-key", "", "require this key as 'Authorization: Bearer KEY'")
	queue := fs.Int("queue", 64, "requests that may wait for a slot before 503")
	fallback := fs.String("chat-template", "zephyr", "built-in template for files without one (zephyr, llama2, chatml, llama3)")
	alias := fs.String("alias", "", "model name reported by /v1/models (default: the file's name)")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "llamago serve: unexpected arguments %q\n", rest)
		return 2
	}
	if *modelPath == "" {
		fmt.Fprintln(stderr, "llamago serve: no model: give one with -m FILE")
		return 2
	}
	l, err := engine.Load(*modelPath, engine.LoadOptions{Backend: *backend, Threads: *threads, HugePages: *hugePages})
	if err != nil {
		fmt.Fprintf(stderr, "llamago serve: %v\n", err)
		return 1
	}
	defer l.Close()
	name := *alias
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(*modelPath), filepath.Ext(*modelPath))
	}
	srv, err := server.New(server.Config{
		Loaded: l, ModelName: name, Parallel: *parallel, Ctx: *ctxSize,
		QueueSize: *queue, APIKey: *apiKey, ChatFallback: *fallback,
	})
	if err != nil {
		fmt.Fprintf(stderr, "llamago serve: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "llamago serve: %v\n", err)
		return 1
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "llamago serve: %s on http://%s (parallel %d)\n", name, ln.Addr(), *parallel)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "llamago serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "llamago serve: shutting down, finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Both at once: the HTTP server stops accepting and waits for the
	// handlers, which end when their generations finish or are cancelled.
	genDone := make(chan error, 1)
	go func() { genDone <- srv.Shutdown(sctx) }()
	httpErr := hs.Shutdown(sctx)
	if err := errors.Join(<-genDone, httpErr); err != nil {
		fmt.Fprintf(stderr, "llamago serve: %v\n", err)
		return 1
	}
	return 0
}
