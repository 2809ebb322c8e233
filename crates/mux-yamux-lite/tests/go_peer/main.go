// A hashicorp/yamux peer for tests/interop_go.rs, built from Debian's
// golang-github-hashicorp-yamux-dev with
// GO111MODULE=off GOPATH=/usr/share/gocode go build.
//
// Usage: go_peer server|client ADDR
//
// "server" listens on ADDR and prints "listening HOST:PORT"; "client" dials
// ADDR. Either way it runs a yamux session of that role with the default
// configuration and echoes every stream the other side opens (all bytes
// back, then Close once the other side has closed). Commands on stdin:
//
//	open N LEN   opens N streams at once; each writes LEN pattern bytes
//	             while reading the echo, closes once the echo is whole,
//	             and checks it; prints "ok N" or "fail REASON"
//	close        closes the session; prints "closed"
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/yamux"
)

func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(uint32(i)*2654435761 + uint32(seed))
	}
	return b
}

func echo(s *yamux.Stream) {
	// Debian's yamux cannot read after its own Close, so the echo closes
	// only after the other side's EOF.
	io.Copy(s, s)
	s.Close()
}

func roundTrip(sess *yamux.Session, seed, n int) error {
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	data := pattern(seed, n)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		werr <- err
	}()
	back := make([]byte, n)
	if _, err := io.ReadFull(s, back); err != nil {
		return fmt.Errorf("stream %d: read: %v", seed, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("stream %d: write: %v", seed, err)
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("stream %d: the echo differs", seed)
	}
	return s.Close()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_peer server|client ADDR")
		os.Exit(2)
	}
	var conn net.Conn
	var err error
	if os.Args[1] == "server" {
		ln, lerr := net.Listen("tcp", os.Args[2])
		if lerr != nil {
			fmt.Fprintln(os.Stderr, lerr)
			os.Exit(1)
		}
		fmt.Printf("listening %s\n", ln.Addr())
		conn, err = ln.Accept()
	} else {
		conn, err = net.Dial("tcp", os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var sess *yamux.Session
	if os.Args[1] == "server" {
		sess, err = yamux.Server(conn, nil)
	} else {
		sess, err = yamux.Client(conn, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			s, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go echo(s)
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "open":
			n, _ := strconv.Atoi(f[1])
			size, _ := strconv.Atoi(f[2])
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if err := roundTrip(sess, i, size); err != nil {
						errs <- err
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			if err, bad := <-errs; bad {
				fmt.Printf("fail %v\n", err)
			} else {
				fmt.Printf("ok %d\n", n)
			}
		case len(f) == 1 && f[0] == "close":
			sess.Close()
			fmt.Println("closed")
		}
	}
}
