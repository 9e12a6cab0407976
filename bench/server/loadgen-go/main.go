// The Go load generator of bench:server: KEDA's side of the external scaler protocol with
// grpc-go, as KEDA itself speaks it. It does what bench/server/loadgen.ts does and answers the
// same commands: one JSON command per line on stdin, one JSON reply per line on stdout
// ({"ok":true,"reply":...} or {"ok":false,"error":"..."}). Built and started by children.ts.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// triggerSpec is bench/server/triggers.ts's TriggerSpec.
type triggerSpec struct {
	RabbitmqURL string            `json:"rabbitmqUrl"`
	QueuePrefix string            `json:"queuePrefix"`
	NamePrefix  string            `json:"namePrefix"`
	Triggers    int               `json:"triggers"`
	Queues      int               `json:"queues"`
	Extra       map[string]string `json:"extra"`
}

type command struct {
	Cmd         string      `json:"cmd"`
	Target      string      `json:"target"`
	Connections int         `json:"connections"`
	Spec        triggerSpec `json:"spec"`
	Concurrency int         `json:"concurrency"`
	Count       int         `json:"count"`
	Rate        float64     `json:"rate"`
	DurationMs  float64     `json:"durationMs"`
}

type okReply struct {
	Ok bool `json:"ok"`
}

func handle(lg *loadGenerator, c command) (any, error) {
	switch c.Cmd {
	case "connect":
		return okReply{true}, lg.connect(c.Target, max(1, c.Connections))
	case "register":
		return lg.register(c.Spec, max(1, c.Concurrency)), nil
	case "streams":
		return lg.openStreams(c.Spec, c.Count), nil
	case "closeStreams":
		lg.closeStreams()
		return okReply{true}, nil
	case "run":
		return lg.run(c.Spec, c.Rate, c.DurationMs), nil
	case "exit":
		lg.closeStreams()
		lg.closeConns()
		return okReply{true}, nil
	}
	return nil, fmt.Errorf("unknown command %q", c.Cmd)
}

func main() {
	lg := &loadGenerator{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c command
		var reply any
		err := json.Unmarshal(in.Bytes(), &c)
		if err == nil {
			reply, err = handle(lg, c)
		}
		if err != nil {
			_ = out.Encode(map[string]any{"ok": false, "error": err.Error()})
		} else {
			_ = out.Encode(map[string]any{"ok": true, "reply": reply})
		}
		if c.Cmd == "exit" {
			return
		}
	}
	// stdin closed: the parent is gone.
	lg.closeStreams()
	lg.closeConns()
}
