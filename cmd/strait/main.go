// Command strait inspects what a node's agent has programmed:
//
//	strait maps   [--pin-dir DIR]   canonical dump of the pinned maps
//	strait status [--addr A]        the agent's status (devices, decisions)
//
// Run it on the node, as root.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: strait maps|status [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "maps":
		err = maps(os.Stdout, os.Args[2:])
	case "status":
		err = status(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strait:", err)
		os.Exit(1)
	}
}

func maps(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("maps", flag.ExitOnError)
	dir := fs.String("pin-dir", loader.DefaultPinDir, "the agent's pin directory")
	_ = fs.Parse(args)
	// Never create maps: only open what an agent pinned.
	if _, err := os.Stat(*dir); err != nil {
		return fmt.Errorf("no datapath pinned at %s: %w", *dir, err)
	}
	dp, err := loader.Load(zap.NewNop(), loader.Options{PinDir: *dir})
	if err != nil {
		return err
	}
	defer dp.Close()
	s, err := lbmap.Dump(dp.Maps)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, s)
	return err
}

func status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:10249", "the agent's metrics address")
	_ = fs.Parse(args)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + *addr + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status + ": " + string(b))
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	_, err = out.WriteTo(os.Stdout)
	return err
}
