package compare

import (
	"io"
	"net"
	"sync"

	"github.com/straitlb/strait/internal/netlab"
)

// forwarder listens on addr inside a namespace and relays every
// connection to the same address in the caller's (root) namespace.
type forwarder struct {
	ln net.Listener
	wg sync.WaitGroup
}

func forwardInto(ns *netlab.NS, addr string) (*forwarder, error) {
	f := &forwarder{}
	if err := ns.Do(func() (err error) {
		f.ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			go relay(c, addr)
		}
	}()
	return f, nil
}

func relay(c net.Conn, addr string) {
	defer c.Close()
	u, err := net.Dial("tcp", addr) // this goroutine's thread is in the root namespace
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func (f *forwarder) Close() error {
	err := f.ln.Close()
	f.wg.Wait()
	return err
}
