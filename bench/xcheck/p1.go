// xcheck: an independent cross-check of warren-perf's scenarios P1 and P2 with a second client,
// rabbitmq/amqp091-go (Debian's golang-github-rabbitmq-amqp091-go-dev 1.5.0), sharing no code
// with warren-perf. It owns the load shapes only: every frame is encoded and decoded by amqp091-go.
//
//	-scenario p1: -producers N connections publish 16 B transient messages to one queue,
//	              -consumers M connections consume it with auto-ack.
//	-scenario p2: 1 KB persistent messages to a durable queue, publisher confirms with at most
//	              -confirm (1000) unconfirmed per producer, consumers with prefetch -prefetch (1000)
//	              and manual acks (multiple=true every -ack-every = 100 messages).
//
// Runs for -time seconds and prints one JSON line with the same rate field names as
// warren-perf's --json summary, plus confirm latency (p2) and this process's CPU seconds.
//
// -cork (default on) wraps each TCP connection, through amqp091-go's Config.Dial hook, in a
// writer that coalesces the library's frame writes: amqp091-go flushes its bufio.Writer after
// every frame (3 write(2) calls per published message), so without it the client spends its
// time in syscalls. Frames written while a previous write is still in the kernel go out together
// in the next write; nothing waits on a timer, so an idle connection sends at once.
//
// The file keeps its historical name p1.go because bench/compare (X1) builds it by that name.
// Build (GOPATH mode, offline): GO111MODULE=off GOPATH=/usr/share/gocode go build -o xcheck p1.go
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// corkedConn coalesces writes: Write appends to a buffer that one flusher goroutine writes out.
type corkedConn struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond // signalled when buf drains or the flusher fails / closes
	wake   chan struct{}
	buf    []byte
	spare  []byte
	err    error
	closed bool
	maxBuf int
}

func cork(c net.Conn) net.Conn {
	cc := &corkedConn{Conn: c, wake: make(chan struct{}, 1), maxBuf: 256 << 10}
	cc.cond = sync.NewCond(&cc.mu)
	go cc.flusher()
	return cc
}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && len(c.buf) >= c.maxBuf {
		c.cond.Wait() // backpressure: the socket is slower than the producer
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *corkedConn) flusher() {
	for range c.wake {
		for {
			c.mu.Lock()
			if c.err != nil || len(c.buf) == 0 {
				c.mu.Unlock()
				break
			}
			out := c.buf
			c.buf = c.spare[:0]
			c.mu.Unlock()
			_, err := c.Conn.Write(out)
			c.mu.Lock()
			c.spare = out
			if err != nil && c.err == nil {
				c.err = err
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		}
	}
}

func (c *corkedConn) Close() error {
	c.mu.Lock()
	// Give pending frames (connection.close) a moment to leave.
	for i := 0; i < 100 && c.err == nil && len(c.buf) > 0; i++ {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	if !c.closed {
		c.closed = true
		if c.err == nil {
			c.err = errors.New("connection closed")
		}
		close(c.wake)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}

type options struct {
	uri, scenario, queue             string
	secs, producers, consumers, size int
	confirm, prefetch, ackEvery      int
	corked                           bool
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "xcheck: %s: %v\n", what, err)
	os.Exit(1)
}

func dial(o *options) *amqp.Connection {
	cfg := amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US"}
	if o.corked {
		base := amqp.DefaultDial(30 * time.Second)
		cfg.Dial = func(network, addr string) (net.Conn, error) {
			c, err := base(network, addr)
			if err != nil {
				return nil, err
			}
			return cork(c), nil
		}
	}
	c, err := amqp.DialConfig(o.uri, cfg)
	if err != nil {
		fail("dial", err)
	}
	return c
}

func channel(c *amqp.Connection) *amqp.Channel {
	ch, err := c.Channel()
	if err != nil {
		fail("channel.open", err)
	}
	return ch
}

type counters struct {
	published, confirmed, nacked, consumed int64
}

// producer publishes until stop is closed; with a confirm window it records publish -> confirm
// latencies (ns) into lat.
func producer(o *options, conn *amqp.Connection, n *counters, stop <-chan struct{}, lat *[]int64, wg *sync.WaitGroup) {
	defer wg.Done()
	ch := channel(conn)
	msg := amqp.Publishing{Body: make([]byte, o.size)}
	if o.scenario == "p2" {
		msg.DeliveryMode = amqp.Persistent
	}
	if o.confirm == 0 {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 256; i++ {
				if err := ch.Publish("", o.queue, false, false, msg); err != nil {
					fail("publish", err)
				}
			}
			atomic.AddInt64(&n.published, 256)
		}
	}
	if err := ch.Confirm(false); err != nil {
		fail("confirm.select", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, o.confirm+16))
	window := make(chan struct{}, o.confirm) // a slot per unconfirmed message
	sent := make([]int64, o.confirm)         // send time by delivery tag modulo the window
	var mine []int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range confirms {
			now := time.Now().UnixNano()
			mine = append(mine, now-atomic.LoadInt64(&sent[c.DeliveryTag%uint64(o.confirm)]))
			if c.Ack {
				atomic.AddInt64(&n.confirmed, 1)
			} else {
				atomic.AddInt64(&n.nacked, 1)
			}
			<-window
		}
	}()
	var tag uint64
	for {
		select {
		case <-stop:
			// Let the in-flight confirms arrive before channel.close (bounded).
			for t := time.Now(); len(window) > 0 && time.Since(t) < 5*time.Second; {
				time.Sleep(time.Millisecond)
			}
			ch.Close()
			<-done
			*lat = mine
			return
		case window <- struct{}{}:
		}
		tag++
		atomic.StoreInt64(&sent[tag%uint64(o.confirm)], time.Now().UnixNano())
		if err := ch.Publish("", o.queue, false, false, msg); err != nil {
			fail("publish", err)
		}
		atomic.AddInt64(&n.published, 1)
	}
}

func consumer(o *options, conn *amqp.Connection, id int, n *counters) {
	ch := channel(conn)
	auto := o.scenario == "p1"
	if !auto && o.prefetch > 0 {
		if err := ch.Qos(o.prefetch, 0, false); err != nil {
			fail("basic.qos", err)
		}
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		if e := <-closed; e != nil {
			fmt.Fprintf(os.Stderr, "xcheck: consumer %d: channel closed by the server: %v\n", id, e)
		}
	}()
	deliveries, err := ch.Consume(o.queue, fmt.Sprintf("xcheck-%d", id), auto, false, false, false, nil)
	if err != nil {
		fail("basic.consume", err)
	}
	go func() {
		k := 0
		for d := range deliveries {
			atomic.AddInt64(&n.consumed, 1)
			if !auto {
				k++
				if k == o.ackEvery {
					k = 0
					if err := d.Ack(true); err != nil {
						return
					}
				}
			}
		}
	}()
}

func cpuSecs() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func pct(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i]) / 1e6
}

func main() {
	o := &options{}
	flag.StringVar(&o.uri, "uri", "amqp://guest:guest@127.0.0.1:5672/", "AMQP URI")
	flag.StringVar(&o.scenario, "scenario", "p1", "p1 (16 B transient, auto-ack) or p2 (1 KB persistent, confirms, manual ack)")
	flag.IntVar(&o.secs, "time", 10, "seconds to run")
	flag.StringVar(&o.queue, "queue", "", "queue name (default xcheck-p1 / xcheck-p2)")
	flag.IntVar(&o.producers, "producers", 1, "publisher connections")
	flag.IntVar(&o.consumers, "consumers", 1, "consumer connections")
	flag.IntVar(&o.size, "size", 0, "body bytes (default 16 for p1, 1024 for p2)")
	flag.IntVar(&o.confirm, "confirm", 1000, "p2: unconfirmed messages per producer")
	flag.IntVar(&o.prefetch, "prefetch", 1000, "p2: consumer prefetch")
	flag.IntVar(&o.ackEvery, "ack-every", 100, "p2: ack with multiple=true every N messages")
	flag.BoolVar(&o.corked, "cork", true, "coalesce the library's per-frame writes (see the file comment)")
	del := flag.String("delete", "", "only delete this queue and exit (cleanup between runs)")
	flag.Parse()
	if *del != "" {
		c := dial(o)
		if _, err := channel(c).QueueDelete(*del, false, false, false); err != nil {
			fail("queue.delete", err)
		}
		c.Close()
		return
	}
	switch o.scenario {
	case "p1":
		o.confirm = 0
		if o.size == 0 {
			o.size = 16
		}
	case "p2":
		if o.size == 0 {
			o.size = 1024
		}
		if o.confirm <= 0 || o.ackEvery <= 0 {
			fail("flags", errors.New("p2 needs -confirm > 0 and -ack-every > 0"))
		}
	default:
		fail("flags", fmt.Errorf("unknown -scenario %q", o.scenario))
	}
	if o.queue == "" {
		o.queue = "xcheck-" + o.scenario
	}

	setup := dial(o)
	sch := channel(setup)
	if _, err := sch.QueueDeclare(o.queue, o.scenario == "p2", false, false, false, nil); err != nil {
		fail("queue.declare", err)
	}
	if _, err := sch.QueuePurge(o.queue, false); err != nil {
		fail("queue.purge", err)
	}
	n := &counters{}
	var conns []*amqp.Connection
	for i := 0; i < o.consumers; i++ {
		c := dial(o)
		conns = append(conns, c)
		consumer(o, c, i, n)
	}
	pconns := make([]*amqp.Connection, o.producers)
	for i := range pconns {
		pconns[i] = dial(o)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	lats := make([][]int64, o.producers)
	cpu0 := cpuSecs()
	start := time.Now()
	for i, c := range pconns {
		wg.Add(1)
		go producer(o, c, n, stop, &lats[i], &wg)
	}
	time.Sleep(time.Duration(o.secs) * time.Second)
	elapsed := time.Since(start).Seconds()
	snap := counters{
		published: atomic.LoadInt64(&n.published), confirmed: atomic.LoadInt64(&n.confirmed),
		nacked: atomic.LoadInt64(&n.nacked), consumed: atomic.LoadInt64(&n.consumed),
	}
	cpu := cpuSecs() - cpu0
	close(stop)
	wg.Wait()

	out := map[string]interface{}{
		"client": "amqp091-go", "scenario": o.scenario, "producers": o.producers,
		"consumers": o.consumers, "size": o.size, "cork": o.corked, "duration_secs": elapsed,
		"published": snap.published, "confirmed": snap.confirmed, "nacked": snap.nacked,
		"consumed":     snap.consumed,
		"publish_rate": float64(snap.published) / elapsed, "confirm_rate": float64(snap.confirmed) / elapsed,
		"consume_rate": float64(snap.consumed) / elapsed,
		"cpu_secs":     cpu, "cpu_pct": 100 * cpu / elapsed,
	}
	if o.confirm > 0 {
		var all []int64
		for _, l := range lats {
			all = append(all, l...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		out["confirm_latency"] = map[string]interface{}{
			"count": len(all), "p50_ms": pct(all, 0.5), "p99_ms": pct(all, 0.99),
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	// Close politely, but never hang on a broker that does not answer.
	closed := make(chan struct{})
	go func() {
		for _, c := range append(append(pconns, conns...), setup) {
			c.Close()
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "xcheck: connection.close not answered within 5 s; exiting")
	}
}
