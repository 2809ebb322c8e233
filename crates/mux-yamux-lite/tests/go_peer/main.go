// A hashicorp/yamux peer for tests/interop_go.rs, built from Debian's
// golang-github-hashicorp-yamux-dev with
// GO111MODULE=off GOPATH=/usr/share/gocode go build.
//
// Usage: go_peer server|client ADDR
//
// "server" listens on ADDR and prints "listening HOST:PORT"; "client" dials
// ADDR. Either way it runs a yamux session of that role with the default
// configuration and echoes every stream the other side opens (all bytes
// back, then Close once the other side has closed). Environment:
//
//	GO_PEER_KEEPALIVE=D  keepalive ping interval D (a Go duration such as
//	                     100ms; default 30s). The write timeout, which is
//	                     also how long a ping may go unanswered before the
//	                     session ends, becomes 10 D (default 10s).
//	GO_PEER_BACKLOG=N    accept backlog N, and accept nothing: the streams
//	                     the other side opens past the first N are refused
//	                     with RST. This snapshot has no Stream.Reset; that
//	                     refusal (and one after its own GoAway) is the only
//	                     RST it ever sends.
//
// Commands on stdin, one answer line each:
//
//	open N LEN   opens N streams at once; each writes LEN pattern bytes
//	             while reading the echo, closes once the echo is whole,
//	             and checks it; prints "ok N" or "fail REASON"
//	opentwo LEN  opens stream A, then stream B; round-trips LEN bytes on
//	             B, then on A, as open does; prints "ok 2" or "fail REASON"
//	awaitreset   opens a stream, writes one byte and reads until the other
//	             side resets it, then writes once more; prints "reset" if
//	             both the read and the write failed with ErrConnectionReset,
//	             else "fail REASON"
//	echoerr      waits (up to 10 s) for an echo to end with an error;
//	             prints "echoerr ERROR" or "echoerr none"
//	ping         pings the other side; prints "pong" or "fail REASON"
//	pings        prints "pings SENT ANSWERED": the keepalive pings this
//	             side has sent so far, and the other side's pings it has
//	             answered
//	close        closes the session; prints "closed"
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// The errors that ended echoes, for echoerr. Buffered and never blocking,
// so that echoes ended by a session shutdown in other tests cannot stall.
var echoErrs = make(chan error, 64)

// countingConn counts the pings and pongs the session writes, which
// hashicorp does not expose. Its one send goroutine writes each 12-byte
// header with one Write, then a DATA frame's body, so every Write is a
// whole header or body bytes.
type countingConn struct {
	net.Conn
	mu           sync.Mutex
	body         int // body bytes of the last DATA header still to come
	pings, pongs int
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.body > 0 {
		c.body -= len(b)
	} else if len(b) == 12 {
		const typeData, typePing, flagSYN, flagACK = 0, 2, 1, 2
		flags := binary.BigEndian.Uint16(b[2:4])
		switch b[1] {
		case typeData:
			c.body = int(binary.BigEndian.Uint32(b[8:12]))
		case typePing:
			if flags&flagSYN != 0 {
				c.pings++
			} else if flags&flagACK != 0 {
				c.pongs++
			}
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pings, c.pongs
}

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
	if _, err := io.Copy(s, s); err != nil {
		select {
		case echoErrs <- err:
		default:
		}
	}
	s.Close()
}

func roundTrip(sess *yamux.Session, seed, n int) error {
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	return check(s, seed, n)
}

// check writes n pattern bytes on s while reading their echo, then
// closes s (only then: it cannot read after its own Close).
func check(s *yamux.Stream, seed, n int) error {
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

// openTwo opens A before B, so A's SYN goes first, but has B carry its
// bytes first: the other side must serve B while A stays silent.
func openTwo(sess *yamux.Session, n int) error {
	a, err := sess.OpenStream()
	if err != nil {
		return err
	}
	b, err := sess.OpenStream()
	if err != nil {
		return err
	}
	if err := check(b, 1, n); err != nil {
		return fmt.Errorf("B: %v", err)
	}
	if err := check(a, 0, n); err != nil {
		return fmt.Errorf("A: %v", err)
	}
	return nil
}

func awaitReset(sess *yamux.Session) error {
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	if _, err := s.Write([]byte("r")); err != nil {
		return fmt.Errorf("write: %v", err)
	}
	// A deadline so that a reset that never comes fails here instead of
	// hanging the test until its own limit.
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [16]byte
	n, rerr := s.Read(buf[:])
	_, werr := s.Write([]byte("w"))
	if rerr != yamux.ErrConnectionReset || werr != yamux.ErrConnectionReset {
		return fmt.Errorf("read %d bytes: %v; write: %v", n, rerr, werr)
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_peer server|client ADDR")
		os.Exit(2)
	}
	config := yamux.DefaultConfig()
	if v := os.Getenv("GO_PEER_KEEPALIVE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		config.KeepAliveInterval = d
		// hashicorp waits this long for a pong; short, so that an
		// unanswered ping ends the session while the test idles.
		config.ConnectionWriteTimeout = 10 * d
	}
	accept := true
	if v := os.Getenv("GO_PEER_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		config.AcceptBacklog = n
		accept = false
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
	counted := &countingConn{Conn: conn}
	var sess *yamux.Session
	if os.Args[1] == "server" {
		sess, err = yamux.Server(counted, config)
	} else {
		sess, err = yamux.Client(counted, config)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if accept {
		go func() {
			for {
				s, err := sess.AcceptStream()
				if err != nil {
					return
				}
				go echo(s)
			}
		}()
	}
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
		case len(f) == 2 && f[0] == "opentwo":
			size, _ := strconv.Atoi(f[1])
			if err := openTwo(sess, size); err != nil {
				fmt.Printf("fail %v\n", err)
			} else {
				fmt.Println("ok 2")
			}
		case len(f) == 1 && f[0] == "awaitreset":
			if err := awaitReset(sess); err != nil {
				fmt.Printf("fail %v\n", err)
			} else {
				fmt.Println("reset")
			}
		case len(f) == 1 && f[0] == "echoerr":
			select {
			case err := <-echoErrs:
				fmt.Printf("echoerr %v\n", err)
			case <-time.After(10 * time.Second):
				fmt.Println("echoerr none")
			}
		case len(f) == 1 && f[0] == "ping":
			if _, err := sess.Ping(); err != nil {
				fmt.Printf("fail %v\n", err)
			} else {
				fmt.Println("pong")
			}
		case len(f) == 1 && f[0] == "pings":
			sent, answered := counted.counts()
			fmt.Printf("pings %d %d\n", sent, answered)
		case len(f) == 1 && f[0] == "close":
			sess.Close()
			fmt.Println("closed")
		default:
			fmt.Printf("fail unknown command %q\n", in.Text())
		}
	}
}
