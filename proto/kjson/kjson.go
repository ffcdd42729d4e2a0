// Package kjson encodes and decodes protobuf messages in the JSON form the
// Koinos JSON-RPC uses (koinos-proto-golang/encoding/json), which koilib
// reads and writes:
//
//   - field names are the proto (snake_case) names; on input the JSON
//     (lowerCamel) names are accepted too, and unknown fields are ignored;
//   - fields holding their proto3 default are omitted (set oneof members and
//     proto3 optional fields are always written);
//   - 64-bit integers are strings; on input numbers and strings are both
//     accepted for every integer field;
//   - enums are their names (numbers accepted on input);
//   - bytes take the text form their (koinos.btype) option names:
//     BLOCK_ID, TRANSACTION_ID and HEX are "0x" + lowercase hex; ADDRESS,
//     CONTRACT_ID and BASE58 are base58; everything else is padded base64url
//     (unpadded and standard base64 are accepted on input).
//
// Field layouts are read once per message type through protoreflect and
// cached; decoding walks a fastjson tree, encoding appends to a byte slice.
package kjson

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	koinospb "github.com/emberchain/ember/proto/koinos"
)

// MaxDepth bounds message nesting on input, so a deeply nested document
// cannot exhaust the stack.
const MaxDepth = 64

// Marshal encodes m.
func Marshal(m proto.Message) ([]byte, error) { return Append(nil, m) }

// Append appends the encoding of m to dst.
func Append(dst []byte, m proto.Message) ([]byte, error) {
	return appendMessage(dst, m.ProtoReflect(), 0)
}

var parsers fastjson.ParserPool

// Unmarshal decodes data into m, which is reset first.
func Unmarshal(data []byte, m proto.Message) error {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return UnmarshalValue(v, m)
}

// UnmarshalValue decodes an already parsed JSON value into m, which is reset
// first. A JSON null leaves m empty.
func UnmarshalValue(v *fastjson.Value, m proto.Message) error {
	proto.Reset(m)
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil
	}
	if fast := fastDecoders[m.ProtoReflect().Descriptor().FullName()]; fast != nil && !genericOnly {
		return fast(v, m.ProtoReflect(), 0, nil)
	}
	return decodeMessage(v, m.ProtoReflect(), 0, nil)
}

// --- field layout cache -------------------------------------------------

type fieldInfo struct {
	fd      protoreflect.FieldDescriptor
	name    string // proto name, used on output
	btype   koinospb.BytesType
	isAny   bool
	listOf  bool
	keyJSON []byte // `"name":`
}

type messageInfo struct {
	fields []fieldInfo
	byName map[string]*fieldInfo // proto and JSON names
}

// infos maps message descriptors to their layouts. It is copied on write
// (rare: once per message type) and read without a lock on every message
// encoded or decoded; a sync.Map keyed by full name cost a string hash and
// more per lookup.
var (
	infos   atomic.Pointer[map[protoreflect.MessageDescriptor]*messageInfo]
	infosMu sync.Mutex
)

func infoFor(md protoreflect.MessageDescriptor) *messageInfo {
	if m := infos.Load(); m != nil {
		if mi, ok := (*m)[md]; ok {
			return mi
		}
	}
	fds := md.Fields()
	mi := &messageInfo{fields: make([]fieldInfo, fds.Len()), byName: make(map[string]*fieldInfo, 2*fds.Len())}
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		fi := &mi.fields[i]
		fi.fd = fd
		fi.name = string(fd.Name())
		fi.listOf = fd.IsList()
		fi.keyJSON = []byte(strconv.Quote(fi.name) + ":")
		if opts := fd.Options(); opts != nil && proto.HasExtension(opts, koinospb.E_Btype) {
			fi.btype = proto.GetExtension(opts, koinospb.E_Btype).(koinospb.BytesType)
		}
		fi.isAny = fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Any"
		mi.byName[fi.name] = fi
		mi.byName[fd.JSONName()] = fi
	}
	infosMu.Lock()
	defer infosMu.Unlock()
	next := map[protoreflect.MessageDescriptor]*messageInfo{}
	if m := infos.Load(); m != nil {
		if have, ok := (*m)[md]; ok {
			return have
		}
		for k, v := range *m {
			next[k] = v
		}
	}
	next[md] = mi
	infos.Store(&next)
	return mi
}

// --- encoding -----------------------------------------------------------

func appendMessage(dst []byte, m protoreflect.Message, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, errors.New("kjson: message nested too deeply")
	}
	mi := infoFor(m.Descriptor())
	dst = append(dst, '{')
	first := true
	for i := range mi.fields {
		fi := &mi.fields[i]
		if fi.fd.IsMap() {
			return dst, fmt.Errorf("kjson: map field %s is not supported", fi.fd.FullName())
		}
		if !m.Has(fi.fd) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, fi.keyJSON...)
		v := m.Get(fi.fd)
		var err error
		if fi.listOf {
			l := v.List()
			dst = append(dst, '[')
			for j := 0; j < l.Len(); j++ {
				if j > 0 {
					dst = append(dst, ',')
				}
				if dst, err = appendValue(dst, fi, l.Get(j), depth); err != nil {
					return dst, err
				}
			}
			dst = append(dst, ']')
			continue
		}
		if dst, err = appendValue(dst, fi, v, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendValue(dst []byte, fi *fieldInfo, v protoreflect.Value, depth int) ([]byte, error) {
	fd := fi.fd
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(dst, v.Bool()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(dst, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(dst, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		dst = append(dst, '"')
		return append(strconv.AppendUint(dst, v.Uint(), 10), '"'), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, fmt.Errorf("kjson: %s is not a finite number", fd.FullName())
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case protoreflect.StringKind:
		return AppendString(dst, v.String()), nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return AppendString(dst, string(ev.Name())), nil
		}
		return strconv.AppendInt(dst, int64(v.Enum()), 10), nil
	case protoreflect.BytesKind:
		return appendBytes(dst, fi.btype, v.Bytes()), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fi.isAny {
			b, err := protojson.Marshal(v.Message().Interface())
			if err != nil {
				return dst, fmt.Errorf("kjson: %s: %w", fd.FullName(), err)
			}
			return append(dst, b...), nil
		}
		return appendMessage(dst, v.Message(), depth+1)
	}
	return dst, fmt.Errorf("kjson: unsupported field kind %v", fd.Kind())
}

func appendBytes(dst []byte, bt koinospb.BytesType, b []byte) []byte {
	dst = append(dst, '"')
	switch bt {
	case koinospb.BytesType_BLOCK_ID, koinospb.BytesType_TRANSACTION_ID, koinospb.BytesType_HEX:
		dst = append(dst, '0', 'x')
		dst = hex.AppendEncode(dst, b)
	case koinospb.BytesType_ADDRESS, koinospb.BytesType_CONTRACT_ID, koinospb.BytesType_BASE58:
		dst = appendBase58(dst, b)
	default:
		dst = base64.URLEncoding.AppendEncode(dst, b)
	}
	return append(dst, '"')
}

// EncodeBytes returns the text form of b for the given btype, without quotes.
func EncodeBytes(bt koinospb.BytesType, b []byte) string {
	s := appendBytes(nil, bt, b)
	return string(s[1 : len(s)-1])
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// --- decoding -----------------------------------------------------------

// FieldError names the field whose value could not be decoded.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %v", e.Path, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// path is where a decoder is in the document, built into a string only
// when an error names it: on success, no field path is ever formatted.
type path struct {
	parent *path
	name   string
	index  int // >= 0: an element of the list named name
}

func (p *path) String() string {
	if p == nil {
		return ""
	}
	s := p.parent.String()
	if p.name != "" {
		if s != "" {
			s += "."
		}
		s += p.name
	}
	if p.index >= 0 {
		s += "[" + strconv.Itoa(p.index) + "]"
	}
	return s
}

func decodeMessage(v *fastjson.Value, m protoreflect.Message, depth int, at *path) error {
	if depth > MaxDepth {
		return &FieldError{Path: at.String(), Err: errors.New("nested too deeply")}
	}
	obj, err := v.Object()
	if err != nil {
		if at == nil {
			return errors.New("expected a JSON object")
		}
		return &FieldError{Path: at.String(), Err: errors.New("expected a JSON object")}
	}
	mi := infoFor(m.Descriptor())
	var ferr error
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		fi := mi.byName[string(key)]
		if fi == nil || fv.Type() == fastjson.TypeNull {
			return // unknown fields are ignored, as Koinos does
		}
		ferr = decodeField(fv, m, fi, depth, &path{parent: at, name: fi.name, index: -1})
	})
	return ferr
}

func decodeField(v *fastjson.Value, m protoreflect.Message, fi *fieldInfo, depth int, at *path) error {
	fd := fi.fd
	if fd.IsMap() {
		return &FieldError{Path: at.String(), Err: errors.New("map fields are not supported")}
	}
	if fi.listOf {
		arr, err := v.Array()
		if err != nil {
			return &FieldError{Path: at.String(), Err: errors.New("expected a JSON array")}
		}
		l := m.Mutable(fd).List()
		for i, ev := range arr {
			ep := &path{parent: at.parent, name: at.name, index: i}
			if fd.Kind() == protoreflect.MessageKind {
				e := l.NewElement()
				if err := decodeSubmessage(ev, e.Message(), fi, depth, ep); err != nil {
					return err
				}
				l.Append(e)
				continue
			}
			sv, err := decodeScalar(ev, fi)
			if err != nil {
				return &FieldError{Path: ep.String(), Err: err}
			}
			l.Append(sv)
		}
		return nil
	}
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return decodeSubmessage(v, m.Mutable(fd).Message(), fi, depth, at)
	}
	sv, err := decodeScalar(v, fi)
	if err != nil {
		return &FieldError{Path: at.String(), Err: err}
	}
	m.Set(fd, sv)
	return nil
}

func decodeSubmessage(v *fastjson.Value, m protoreflect.Message, fi *fieldInfo, depth int, at *path) error {
	if fi.isAny {
		if err := protojson.Unmarshal(v.MarshalTo(nil), m.Interface()); err != nil {
			return &FieldError{Path: at.String(), Err: err}
		}
		return nil
	}
	if fast := fastDecoders[m.Descriptor().FullName()]; fast != nil && !genericOnly {
		return fast(v, m, depth+1, at)
	}
	return decodeMessage(v, m, depth+1, at)
}

// genericOnly turns the hand-written decoders off, for the differential
// tests that compare them with the generic one.
var genericOnly bool

func decodeScalar(v *fastjson.Value, fi *fieldInfo) (protoreflect.Value, error) {
	fd := fi.fd
	switch fd.Kind() {
	case protoreflect.BoolKind:
		b, err := v.Bool()
		if err != nil {
			return protoreflect.Value{}, errors.New("expected true or false")
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := decodeInt(v, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := decodeInt(v, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := decodeUint(v, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := decodeUint(v, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, err := v.Float64()
		if err != nil {
			return protoreflect.Value{}, errors.New("expected a number")
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.StringKind:
		b, err := v.StringBytes()
		if err != nil {
			return protoreflect.Value{}, errors.New("expected a string")
		}
		if !utf8.Valid(b) {
			return protoreflect.Value{}, errors.New("string is not valid UTF-8")
		}
		return protoreflect.ValueOfString(string(b)), nil
	case protoreflect.EnumKind:
		if v.Type() == fastjson.TypeNumber {
			n, err := decodeInt(v, 32)
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), err
		}
		b, err := v.StringBytes()
		if err != nil {
			return protoreflect.Value{}, errors.New("expected an enum name")
		}
		ev := fd.Enum().Values().ByName(protoreflect.Name(b))
		if ev == nil {
			return protoreflect.Value{}, fmt.Errorf("unknown value %q for enum %s", b, fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(ev.Number()), nil
	case protoreflect.BytesKind:
		b, err := v.StringBytes()
		if err != nil {
			return protoreflect.Value{}, errors.New("expected a string")
		}
		out, err := DecodeBytes(fi.btype, string(b))
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfBytes(out), nil
	}
	return protoreflect.Value{}, fmt.Errorf("unsupported field kind %v", fd.Kind())
}

func decodeUint(v *fastjson.Value, bits int) (uint64, error) {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		n, err := strconv.ParseUint(string(s), 10, bits)
		if err != nil {
			return 0, fmt.Errorf("expected an unsigned %d-bit integer, got %q", bits, s)
		}
		return n, nil
	case fastjson.TypeNumber:
		raw := v.String()
		if n, err := strconv.ParseUint(raw, 10, bits); err == nil {
			return n, nil
		}
		// Accept exponent forms such as 1e3 when they are exact integers.
		f, err := v.Float64()
		if err != nil || f < 0 || f != math.Trunc(f) || f >= math.Ldexp(1, bits) {
			return 0, fmt.Errorf("expected an unsigned %d-bit integer, got %s", bits, raw)
		}
		return uint64(f), nil
	}
	return 0, fmt.Errorf("expected an unsigned %d-bit integer", bits)
}

func decodeInt(v *fastjson.Value, bits int) (int64, error) {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		n, err := strconv.ParseInt(string(s), 10, bits)
		if err != nil {
			return 0, fmt.Errorf("expected a signed %d-bit integer, got %q", bits, s)
		}
		return n, nil
	case fastjson.TypeNumber:
		raw := v.String()
		if n, err := strconv.ParseInt(raw, 10, bits); err == nil {
			return n, nil
		}
		f, err := v.Float64()
		lim := math.Ldexp(1, bits-1)
		if err != nil || f != math.Trunc(f) || f < -lim || f >= lim {
			return 0, fmt.Errorf("expected a signed %d-bit integer, got %s", bits, raw)
		}
		return int64(f), nil
	}
	return 0, fmt.Errorf("expected a signed %d-bit integer", bits)
}

// DecodeBytes parses the text form of a bytes field for the given btype.
func DecodeBytes(bt koinospb.BytesType, s string) ([]byte, error) {
	switch bt {
	case koinospb.BytesType_BLOCK_ID, koinospb.BytesType_TRANSACTION_ID, koinospb.BytesType_HEX:
		h, ok := strings.CutPrefix(s, "0x")
		if !ok {
			return nil, fmt.Errorf("expected 0x-prefixed hex, got %q", clip(s))
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("invalid hex %q", clip(s))
		}
		return b, nil
	case koinospb.BytesType_ADDRESS, koinospb.BytesType_CONTRACT_ID, koinospb.BytesType_BASE58:
		if s == "" {
			return nil, nil
		}
		b, err := decodeBase58(s)
		if err != nil {
			return nil, fmt.Errorf("invalid base58 %q", clip(s))
		}
		return b, nil
	}
	return decodeBase64(s)
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("invalid base64url %q", clip(s))
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
