package main

// The proto codec of every stream, in place of grpc-go's default one.
//
// grpc-go's default codec marshals each outgoing message into a buffer from a shared pool of size classes
// (256 B, 4 KiB, 16 KiB, 32 KiB, 1 MiB). An ACK in state of the world repeats the stream's whole EDS
// subscription: 1,000 cluster names are about 35 KB. So each ACK took a 1 MiB buffer, and the pool clears a
// buffer it makes. The pool is a sync.Pool, which every garbage collection empties. In the next round
// 5,000 streams each cleared a fresh 1 MiB: 5 GB of page faults and memclr. That was 90% of the generator's
// CPU in that round (8 of 9 s, pprof), on the two cores it shares with the server it measures, and it set the
// p99 of every server in that round. Here a message is marshalled into a slice of its own size, and a
// response is read into a slice of its size. It is the same for every server.

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

type exactCodec struct{}

func (exactCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("exactCodec: %T is not a proto.Message", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (exactCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("exactCodec: %T is not a proto.Message", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

// Name "proto" replaces grpc-go's codec of that name for every call of this process.
func (exactCodec) Name() string { return "proto" }

func init() { encoding.RegisterCodecV2(exactCodec{}) }
