// p1: an independent cross-check of scenario P1 with the rabbitmq/amqp091-go client:
// 1 publisher connection -> 1 queue -> 1 auto-ack consumer connection, 16 B transient
// messages, for -time seconds. Prints one JSON line like warren-perf's summary (rates only).
//
// Built by bench/compare (scenario X1) from Debian's golang-go + golang-github-rabbitmq-amqp091-go-dev
// (GOPATH mode, no network).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	uri := flag.String("uri", "amqp://guest:guest@127.0.0.1:5672/", "AMQP URI")
	secs := flag.Int("time", 10, "seconds to run")
	queue := flag.String("queue", "xcheck-p1", "queue name")
	flag.Parse()

	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "p1: %s: %v\n", what, err)
		os.Exit(1)
	}
	pc, err := amqp.Dial(*uri)
	if err != nil {
		fail("dial publisher", err)
	}
	cc, err := amqp.Dial(*uri)
	if err != nil {
		fail("dial consumer", err)
	}
	pch, err := pc.Channel()
	if err != nil {
		fail("publisher channel", err)
	}
	cch, err := cc.Channel()
	if err != nil {
		fail("consumer channel", err)
	}
	if _, err := pch.QueueDeclare(*queue, false, false, false, false, nil); err != nil {
		fail("queue.declare", err)
	}
	deliveries, err := cch.Consume(*queue, "xcheck", true, false, false, false, nil)
	if err != nil {
		fail("basic.consume", err)
	}
	var consumed, published int64
	go func() {
		for range deliveries {
			atomic.AddInt64(&consumed, 1)
		}
	}()
	body := make([]byte, 16)
	start := time.Now()
	deadline := start.Add(time.Duration(*secs) * time.Second)
	msg := amqp.Publishing{Body: body}
	for time.Now().Before(deadline) {
		for i := 0; i < 256; i++ {
			if err := pch.Publish("", *queue, false, false, msg); err != nil {
				fail("publish", err)
			}
		}
		published += 256
	}
	elapsed := time.Since(start).Seconds()
	c := atomic.LoadInt64(&consumed)
	out, _ := json.Marshal(map[string]interface{}{
		"client": "amqp091-go", "duration_secs": elapsed,
		"published": published, "consumed": c,
		"publish_rate": float64(published) / elapsed, "consume_rate": float64(c) / elapsed,
	})
	fmt.Println(string(out))
	pc.Close()
	cc.Close()
}
