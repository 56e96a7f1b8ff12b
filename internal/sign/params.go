package sign

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Params are the flags of cosign sign that hoist honours, as
// plugins/docker passes PLUGIN_COSIGN_PARAMS on to cosign sign (split on
// white space, docker.go createCosignCommand): annotations, the
// transparency log's, and --yes.
type Params struct {
	// Annotations are cosign's -a/--annotations key=value pairs, signed
	// in the signature's payload (cosign verify -a key=value checks them).
	Annotations map[string]string
	// TlogUpload is --tlog-upload when given (nil: not given).
	TlogUpload *bool
	// RekorURL is --rekor-url ("" when not given).
	RekorURL string
}

// elsewhere are cosign sign's flags that a hoist setting gives: the
// refusal names it.
var elsewhere = map[string]string{
	"key":                     "the key is PLUGIN_COSIGN_PRIVATE_KEY (PLUGIN_SIGN_KEY)",
	"identity-token":          "keyless signing takes the token from PLUGIN_SIGN_IDENTITY_TOKEN",
	"oidc-issuer":             "keyless signing takes the CI's token from PLUGIN_SIGN_IDENTITY_TOKEN",
	"fulcio-url":              "Fulcio is PLUGIN_SIGN_FULCIO_URL",
	"allow-insecure-registry": "registry access is PLUGIN_INSECURE and PLUGIN_SKIP_TLS_VERIFY, for the push and its signature alike",
	"allow-http-registry":     "registry access is PLUGIN_INSECURE and PLUGIN_SKIP_TLS_VERIFY, for the push and its signature alike",
	"recursive":               "an index is signed at its digest, which covers its images",
	"upload":                  "the signature is always stored beside the image",
}

// ParseParams reads PLUGIN_COSIGN_PARAMS as cosign sign would (its
// pflag flags, the value split on white space as plugins/docker splits
// it): -a/--annotations (key=value, comma-separated or repeated),
// --tlog-upload, --rekor-url and -y/--yes are honoured; any other flag,
// or a word that is not a flag's, is an error that names it (the caller
// says which setting held it).
func ParseParams(s string) (Params, error) {
	var p Params
	fs := pflag.NewFlagSet("PLUGIN_COSIGN_PARAMS", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ann := fs.StringSliceP("annotations", "a", nil, "")
	tlog := fs.Bool("tlog-upload", true, "")
	fs.StringVar(&p.RekorURL, "rekor-url", "", "")
	yes := fs.BoolP("yes", "y", false, "")
	args := strings.Fields(s)
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if why, ok := elsewhere[name]; ok {
				return p, fmt.Errorf("--%s is not passed on: %s", name, why)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return p, fmt.Errorf("%w: of cosign sign's flags hoist honours -a/--annotations, --tlog-upload, --rekor-url and -y/--yes, and refuses the others rather than ignore them", err)
	}
	if fs.NArg() > 0 {
		return p, fmt.Errorf("%q is no flag's value: give cosign sign's flags only (the image signed is the digest pushed), and a boolean's value with = (--tlog-upload=false)", fs.Arg(0))
	}
	if fs.Changed("yes") && !*yes {
		return p, errors.New("--yes=false: hoist never asks for a confirmation; remove it")
	}
	if fs.Changed("tlog-upload") {
		p.TlogUpload = tlog
	}
	for _, a := range *ann {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return p, fmt.Errorf("annotation %q is not key=value", a)
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
	return p, nil
}
