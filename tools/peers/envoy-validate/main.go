// envoy-validate checks xDS resources against Envoy's own first-stage validation: the
// protoc-gen-validate (PGV) rules compiled into go-control-plane's generated envoy/... types.
//
// Input (stdin): a batch of serialized google.protobuf.Any messages, each prefixed by its length as a
// varint (a protobuf "delimited" stream) - exactly the bytes of DiscoveryResponse.resources. With
// --json the input is instead a JSON array of proto3-JSON Any objects ({"@type": "...", ...}).
//
// For every resource it resolves the type URL in protoregistry.GlobalTypes (every current Envoy and
// xDS package is registered by imports.go), unmarshals it, calls the generated ValidateAll(), and then
// walks the message: every nested google.protobuf.Any (and xds/udpa TypedStruct) is unpacked and
// validated the same way, recursively, so an HttpConnectionManager inside a listener filter, the
// router inside its http_filters, transport sockets, typed_per_filter_config values and
// typed_extension_protocol_options are all checked. The walk also applies the checks Envoy's
// MessageUtil::validate() makes besides PGV: durations must be non-negative and in range, fields and
// enum values marked disallowed_by_default are rejected (plain deprecated ones are warnings), and
// unknown fields are reported.
//
// Output (stdout): {"results":[{"index":0,"type_url":"...","name":"...","errors":[...],"warnings":[...]}]}.
// Exit status 0 whenever the input could be read, however invalid the resources; 2 on malformed input.
//go:generate go run gen_imports.go

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/envoyproxy/go-control-plane/envoy/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Result is the verdict on one input resource.
type Result struct {
	Index    int      `json:"index"`
	TypeURL  string   `json:"type_url"`
	Name     string   `json:"name"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

type output struct {
	Results []*Result `json:"results"`
}

func main() {
	jsonMode := flag.Bool("json", false, "read a JSON array of proto3-JSON Any objects instead of a varint-delimited stream of binary Any")
	version := flag.Bool("version", false, "print the go-control-plane version this checker was built with")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: envoy-validate [--json] < resources\n\n"+
			"Reads serialized google.protobuf.Any resources (varint length-delimited) from stdin,\n"+
			"validates each with Envoy's protoc-gen-validate rules (recursing into every nested Any)\n"+
			"and prints {\"results\":[{\"index\",\"type_url\",\"name\",\"errors\",\"warnings\"}]} on stdout.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version {
		fmt.Println(moduleVersion("github.com/envoyproxy/go-control-plane/envoy"))
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var results []*Result
	if *jsonMode {
		results, err = readJSON(in)
	} else {
		results, err = readDelimited(in)
	}
	if err != nil {
		fail("malformed input: %v", err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(output{Results: results}); err != nil {
		fail("writing stdout: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "envoy-validate: "+format+"\n", args...)
	os.Exit(2)
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return path + " " + d.Version
			}
		}
	}
	return path + " (unknown version)"
}

// readDelimited parses a stream of varint-length-prefixed binary Any messages.
func readDelimited(in []byte) ([]*Result, error) {
	results := []*Result{}
	for off := 0; off < len(in); {
		n, l := protowire.ConsumeVarint(in[off:])
		if l < 0 {
			return nil, fmt.Errorf("resource %d at byte %d: bad varint length prefix", len(results), off)
		}
		off += l
		if n > uint64(len(in)-off) {
			return nil, fmt.Errorf("resource %d at byte %d: length %d runs past the end of input (%d bytes left)", len(results), off, n, len(in)-off)
		}
		frame := in[off : off+int(n)]
		off += int(n)
		a := &anypb.Any{}
		if err := proto.Unmarshal(frame, a); err != nil {
			return nil, fmt.Errorf("resource %d: not a google.protobuf.Any: %v", len(results), err)
		}
		if len(a.ProtoReflect().GetUnknown()) > 0 {
			return nil, fmt.Errorf("resource %d: not a google.protobuf.Any: unknown fields present", len(results))
		}
		results = append(results, validateResource(len(results), a))
	}
	return results, nil
}

// readJSON parses a JSON array of proto3-JSON Any objects. An element that protojson rejects
// (unknown @type, unknown field, wrong value type) is reported as an error of that resource.
func readJSON(in []byte) ([]*Result, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(in, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON array of Any objects: %v", err)
	}
	results := make([]*Result, 0, len(raw))
	for i, r := range raw {
		a := &anypb.Any{}
		if err := protojson.Unmarshal(r, a); err != nil {
			var head struct {
				Type string `json:"@type"`
			}
			_ = json.Unmarshal(r, &head)
			res := newResult(i, head.Type)
			res.Errors = append(res.Errors, "cannot parse proto3 JSON: "+clean(err))
			results = append(results, res)
			continue
		}
		results = append(results, validateResource(i, a))
	}
	return results, nil
}

// clean replaces the non-breaking spaces that the protobuf module puts into its error texts (to keep
// callers from matching them) with plain ones, so messages read and grep normally.
func clean(err error) string {
	return strings.ReplaceAll(err.Error(), "\u00a0", " ")
}

func newResult(index int, typeURL string) *Result {
	return &Result{Index: index, TypeURL: typeURL, Errors: []string{}, Warnings: []string{}}
}

func validateResource(index int, a *anypb.Any) *Result {
	res := newResult(index, a.GetTypeUrl())
	msg, err := unpack(a)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return res
	}
	res.Name = resourceName(msg.ProtoReflect())
	c := &checker{res: res}
	c.message(msg, "")
	return res
}

// resourceName is the xDS resource name: the `name` field (Cluster, Listener, RouteConfiguration,
// Secret, discovery Resource, ...) or `cluster_name` (ClusterLoadAssignment).
func resourceName(m protoreflect.Message) string {
	for _, f := range []protoreflect.Name{"name", "cluster_name"} {
		fd := m.Descriptor().Fields().ByName(f)
		if fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap() {
			return m.Get(fd).String()
		}
	}
	return ""
}

// unpack resolves an Any's type URL in the global registry and unmarshals its value. Unknown fields
// are kept, so that the walk can report them.
func unpack(a *anypb.Any) (proto.Message, error) {
	if a.GetTypeUrl() == "" {
		return nil, errors.New("empty type URL")
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(a.GetTypeUrl())
	if err != nil {
		if errors.Is(err, protoregistry.NotFound) {
			return nil, fmt.Errorf("unknown type URL %q: no such message in %s",
				a.GetTypeUrl(), moduleVersion("github.com/envoyproxy/go-control-plane/envoy"))
		}
		return nil, fmt.Errorf("bad type URL %q: %s", a.GetTypeUrl(), clean(err))
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(a.GetValue(), msg); err != nil {
		return nil, fmt.Errorf("cannot unmarshal %s: %s", mt.Descriptor().FullName(), clean(err))
	}
	return msg, nil
}

type checker struct {
	res *Result
}

func (c *checker) errorf(path, format string, args ...any) {
	c.res.Errors = append(c.res.Errors, at(path)+fmt.Sprintf(format, args...))
}

func (c *checker) warnf(path, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, at(path)+fmt.Sprintf(format, args...))
}

func at(path string) string {
	if path == "" {
		return "(root): "
	}
	return path + ": "
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// message validates one message that is the root of a resource or the content of an Any:
// PGV ValidateAll() on the whole message tree, then the walk that reaches into nested Anys.
func (c *checker) message(msg proto.Message, path string) {
	m := msg.ProtoReflect()
	if name := m.Descriptor().FullName(); name == "xds.type.v3.TypedStruct" || name == "udpa.type.v1.TypedStruct" {
		c.typedStruct(m, path)
		return
	}
	if v, ok := msg.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			c.pgv(err, m.Descriptor(), path)
		}
	}
	c.walk(m, path)
}

// typedStruct handles xds.type.v3.TypedStruct / udpa.type.v1.TypedStruct the way Envoy does: the
// Struct value is converted to the message its type_url names, which is then validated.
func (c *checker) typedStruct(m protoreflect.Message, path string) {
	d := m.Descriptor()
	typeURL := m.Get(d.Fields().ByName("type_url")).String()
	var value *structpb.Struct
	if fd := d.Fields().ByName("value"); m.Has(fd) {
		b, err := proto.Marshal(m.Get(fd).Message().Interface())
		if err == nil {
			value = &structpb.Struct{}
			err = proto.Unmarshal(b, value)
		}
		if err != nil {
			c.errorf(path, "TypedStruct value: %v", err)
			return
		}
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(typeURL)
	if err != nil {
		c.errorf(join(path, "type_url"), "TypedStruct names unknown type URL %q", typeURL)
		return
	}
	inner := mt.New().Interface()
	if value != nil {
		js, err := protojson.Marshal(value)
		if err == nil {
			err = protojson.Unmarshal(js, inner)
		}
		if err != nil {
			c.errorf(join(path, "value"), "TypedStruct value is not a valid %s: %v", mt.Descriptor().FullName(), err)
			return
		}
	}
	c.message(inner, fmt.Sprintf("%s(%s)", join(path, "value"), mt.Descriptor().Name()))
}

// walk visits every populated field of m in declaration order. It reports unknown fields,
// deprecated or disallowed fields and enum values and invalid durations, and unpacks every Any.
func (c *checker) walk(m protoreflect.Message, path string) {
	d := m.Descriptor()
	if u := m.GetUnknown(); len(u) > 0 {
		c.errorf(path, "unknown field(s) %v in %s: not in Envoy's protos (Envoy drops them, or rejects the resource with --reject-unknown-dynamic-fields)", unknownNumbers(u), d.FullName())
	}
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		fpath := join(path, string(fd.Name()))
		c.deprecation(fd, fpath)
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for j := 0; j < l.Len(); j++ {
				c.value(d, fd, l.Get(j), fmt.Sprintf("%s[%d]", fpath, j))
			}
		case fd.IsMap():
			vd := fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				c.value(d, vd, mv, fmt.Sprintf("%s[%q]", fpath, k.String()))
				return true
			})
		default:
			c.value(d, fd, v, fpath)
		}
	}
}

// value checks one (element) value of field fd of the message described by parent.
func (c *checker) value(parent protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		c.enumValue(fd, v.Enum(), path)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case "google.protobuf.Any":
			c.any(parent, m, path)
		case "google.protobuf.Duration":
			c.duration(m, path)
		default:
			c.walk(m, path)
		}
	}
}

func (c *checker) any(parent protoreflect.MessageDescriptor, m protoreflect.Message, path string) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		b, err := proto.Marshal(m.Interface())
		a = &anypb.Any{}
		if err == nil {
			err = proto.Unmarshal(b, a)
		}
		if err != nil {
			c.errorf(path, "bad Any: %v", err)
			return
		}
	}
	inner, err := unpack(a)
	if err != nil {
		// Metadata.typed_filter_metadata holds opaque per-filter data that Envoy only unpacks when a
		// filter asks for it, so a type this checker does not know is fine there.
		if parent.FullName() == "envoy.config.core.v3.Metadata" {
			c.warnf(path, "%v", err)
			return
		}
		c.errorf(path, "%v", err)
		return
	}
	c.message(inner, fmt.Sprintf("%s(%s)", path, inner.ProtoReflect().Descriptor().Name()))
}

// duration applies Envoy's MessageUtil::validateDurationFields (source/common/protobuf/utility.cc):
// every Duration, with or without a PGV rule, must be non-negative and fit in int64 nanoseconds.
func (c *checker) duration(m protoreflect.Message, path string) {
	d := m.Descriptor()
	secs := m.Get(d.Fields().ByName("seconds")).Int()
	nanos := m.Get(d.Fields().ByName("nanos")).Int()
	const maxSeconds = (1<<63 - 1) / 1_000_000_000
	switch {
	case secs < 0 || nanos < 0:
		c.errorf(path, "Expected positive duration: seconds:%d nanos:%d (Envoy MessageUtil duration check)", secs, nanos)
	case nanos > 999_999_999 || secs > maxSeconds:
		c.errorf(path, "Duration out-of-range: seconds:%d nanos:%d (Envoy MessageUtil duration check)", secs, nanos)
	}
}

// deprecation mirrors Envoy's deprecated-field check: a set field with [deprecated = true] is a
// warning, unless it is also [(envoy.annotations.disallowed_by_default) = true], which Envoy rejects.
func (c *checker) deprecation(fd protoreflect.FieldDescriptor, path string) {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil || !opts.GetDeprecated() {
		return
	}
	if disallowed, _ := proto.GetExtension(opts, annotations.E_DisallowedByDefault).(bool); disallowed {
		c.errorf(path, "field %s is deprecated and disallowed by default (Envoy rejects it unless a runtime override re-enables it)", fd.FullName())
		return
	}
	c.warnf(path, "field %s is deprecated", fd.FullName())
}

func (c *checker) enumValue(fd protoreflect.FieldDescriptor, n protoreflect.EnumNumber, path string) {
	ev := fd.Enum().Values().ByNumber(n)
	if ev == nil {
		// An open enum may carry a number it does not define; PGV's defined_only rules catch the
		// fields where Envoy cares.
		return
	}
	opts, ok := ev.Options().(*descriptorpb.EnumValueOptions)
	if !ok || opts == nil || !opts.GetDeprecated() {
		return
	}
	if disallowed, _ := proto.GetExtension(opts, annotations.E_DisallowedByDefaultEnum).(bool); disallowed {
		c.errorf(path, "enum value %s is deprecated and disallowed by default", ev.FullName())
		return
	}
	c.warnf(path, "enum value %s is deprecated", ev.FullName())
}

func unknownNumbers(b []byte) []protowire.Number {
	var nums []protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			break
		}
		b = b[m:]
		nums = append(nums, num)
	}
	return nums
}

// pgvError is the interface of every PGV-generated <Message>ValidationError.
type pgvError interface {
	error
	Field() string
	Reason() string
	Key() bool
	Cause() error
	ErrorName() string
}

// pgv flattens a ValidateAll() error tree into one line per violated rule. Each line starts with the
// path in proto field names (e.g. filter_chains[0].filters[0].name) and ends with PGV's own text for
// the innermost violation (e.g. "invalid Filter.Name: value length must be at least 1 runes").
func (c *checker) pgv(err error, md protoreflect.MessageDescriptor, path string) {
	var multi interface{ AllErrors() []error }
	if errors.As(err, &multi) && !isPGV(err) {
		for _, e := range multi.AllErrors() {
			c.pgv(e, md, path)
		}
		return
	}
	var ve pgvError
	if !errors.As(err, &ve) {
		c.errorf(path, "%v", err)
		return
	}
	goField, index := splitIndex(ve.Field())
	fd, oneof := lookupGoName(md, goField)
	name := goField
	switch {
	case fd != nil:
		name = string(fd.Name())
	case oneof != nil:
		name = string(oneof.Name())
	}
	fpath := join(path, name)
	if index != "" {
		if fd != nil && fd.IsMap() && fd.MapKey().Kind() == protoreflect.StringKind {
			fpath += fmt.Sprintf("[%q]", index)
		} else {
			fpath += "[" + index + "]"
		}
	}
	cause := ve.Cause()
	if cause != nil && ve.Reason() == "embedded message failed validation" {
		if sub := embeddedDescriptor(fd); sub != nil {
			c.pgv(cause, sub, fpath)
			return
		}
	}
	key := ""
	if ve.Key() {
		key = "key for "
	}
	msgName := strings.TrimSuffix(ve.ErrorName(), "ValidationError")
	text := fmt.Sprintf("invalid %s%s.%s: %s", key, msgName, ve.Field(), ve.Reason())
	if cause != nil {
		text += " | caused by: " + cause.Error()
	}
	c.errorf(fpath, "%s", text)
}

func isPGV(err error) bool {
	_, ok := err.(pgvError)
	return ok
}

func embeddedDescriptor(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd == nil {
		return nil
	}
	if fd.IsMap() {
		return fd.MapValue().Message()
	}
	return fd.Message()
}

// splitIndex splits PGV's "FilterChains[0]" / "TypedPerFilterConfig[envoy.filters.http.fault]".
func splitIndex(field string) (string, string) {
	i := strings.IndexByte(field, '[')
	if i < 0 || !strings.HasSuffix(field, "]") {
		return field, ""
	}
	return field[:i], field[i+1 : len(field)-1]
}

// lookupGoName finds the field or oneof whose generated Go name is goName.
func lookupGoName(md protoreflect.MessageDescriptor, goName string) (protoreflect.FieldDescriptor, protoreflect.OneofDescriptor) {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	want := norm(goName)
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if norm(string(fields.Get(i).Name())) == want {
			return fields.Get(i), nil
		}
	}
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if norm(string(oneofs.Get(i).Name())) == want {
			return nil, oneofs.Get(i)
		}
	}
	return nil, nil
}
