package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The raw benchmarks put the edge between a client and an endpoint that
// both speak HTTP/1.1 over plain sockets without allocating, so the
// allocations per request that testing.B reports are the edge's own (net/http
// server side included). Compare runs with
//
//	go test -run '^$' -bench ForwardRaw -benchmem ./core/edge
//
// and count system calls per request by running the same binary under
// `strace -f -c` with -benchtime=Nx, the direct variant giving what the
// client and endpoint cost on their own.

// rawServer answers every request on every connection with answer.
func rawServer(b testing.TB, answer []byte) string {
	ln := listenLoopback(b)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// skipHead reads one header block without a body.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// readAnswer reads one answer with a Content-Length and returns its status.
func readAnswer(br *bufio.Reader) (int, error) {
	status, length := 0, 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			if len(line) < 12 {
				return 0, io.ErrUnexpectedEOF
			}
			status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
			continue
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			for _, c := range bytes.TrimSpace(line[len(cl):]) {
				length = length*10 + int(c-'0')
			}
		}
	}
	_, err := br.Discard(length)
	return status, err
}

func benchRaw(b *testing.B, addr, target string) {
	benchRawConn(b, addr, target, false)
}

// benchRawConn loads addr as benchRaw does; with perConn, each request
// comes on a connection of its own, closed by the server's answer.
func benchRawConn(b *testing.B, addr, target string, perConn bool) {
	hdr := ""
	if perConn {
		hdr = "Connection: close\r\n"
	}
	req := []byte("GET " + target + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n" + hdr + "\r\n")
	b.ReportAllocs()
	b.SetParallelism(2)
	cpu0 := processCPU(b)
	defer func() {
		// CPU time of the whole process (client, edge and endpoint), less
		// sensitive to a busy machine than the time per request.
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		if perConn {
			for pb.Next() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = c.Write(req)
				if err == nil {
					var st int
					if st, err = readAnswer(bufio.NewReader(c)); err == nil && st != 200 {
						err = fmt.Errorf("status %d", st)
					}
				}
				c.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
			return
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 32<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if st, err := readAnswer(br); err != nil || st != 200 {
				b.Errorf("answer %d: %v", st, err)
				return
			}
		}
	})
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkForwardRaw(b *testing.B) {
	for _, size := range []int{5, 16 << 10} {
		answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
			strconv.Itoa(size) + "\r\n\r\n" + strings.Repeat("h", size))
		up := rawServer(b, answer)
		e := edgeTo(b, "http://"+up, Options{})
		b.Run("direct/"+strconv.Itoa(size), func(b *testing.B) { benchRaw(b, up, "/x") })
		b.Run("edge/"+strconv.Itoa(size), func(b *testing.B) { benchRaw(b, e.Addr().String(), "/up/x") })
	}
}

// BenchmarkForwardNewConn is BenchmarkForwardRaw's small answer with a new
// client connection per request (the endpoint connection stays pooled):
// its allocations are what accepting and serving a connection costs.
func BenchmarkForwardNewConn(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	up := rawServer(b, answer)
	e := edgeTo(b, "http://"+up, Options{})
	benchRawConn(b, e.Addr().String(), "/up/x", true)
}
