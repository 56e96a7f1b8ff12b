package pipeline

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Connectors map a pipeline's connectorRefs to registries and their
// credentials: what Harness keeps in its connectors, for a run here
// (docs/pipelines.md, "The connectors file").
type Connectors struct {
	File   string
	byName map[string]*Connector
}

// Connector is one connector. Every value may hold
// <+secrets.getValue("x")>; it is resolved for the step that uses it.
type Connector struct {
	Name, Type string
	Pos        Pos
	// fields are the connector's values by their file name, with where.
	fields map[string]*yaml.Node
	// env are extra variables for the steps that use it.
	env []*yaml.Node
}

// connectorTypes are the types and, for each, the fields it takes and the
// variable each becomes (the variables a runner sends, docs/ci.md).
var connectorTypes = map[string][][2]string{
	"docker": {{"url", "PLUGIN_REGISTRY"}, {"username", "PLUGIN_USERNAME"}, {"password", "PLUGIN_PASSWORD"}},
	"aws": {{"accessKey", "PLUGIN_ACCESS_KEY"}, {"secretKey", "PLUGIN_SECRET_KEY"}, {"assumeRole", "PLUGIN_ASSUME_ROLE"},
		{"externalId", "PLUGIN_EXTERNAL_ID"}, {"oidcToken", "PLUGIN_OIDC_TOKEN_ID"}, {"ecrEndpoint", "PLUGIN_ECR_ENDPOINT"}, {"stsEndpoint", "PLUGIN_STS_ENDPOINT"}},
	"gcp": {{"jsonKey", "PLUGIN_JSON_KEY"}, {"accessToken", "PLUGIN_ACCESS_TOKEN"}, {"oidcToken", "PLUGIN_OIDC_TOKEN_ID"},
		{"projectNumber", "PLUGIN_PROJECT_NUMBER"}, {"poolId", "PLUGIN_POOL_ID"}, {"providerId", "PLUGIN_PROVIDER_ID"},
		{"serviceAccountEmail", "PLUGIN_SERVICE_ACCOUNT_EMAIL"}, {"stsEndpoint", "PLUGIN_GOOGLE_STS_ENDPOINT"}, {"iamEndpoint", "PLUGIN_GOOGLE_IAM_ENDPOINT"}},
	"azure": {{"tenantId", "TENANT_ID"}, {"clientId", "CLIENT_ID"}, {"clientSecret", "CLIENT_SECRET"}, {"clientCertificate", "CLIENT_CERTIFICATE"},
		{"oidcToken", "PLUGIN_OIDC_TOKEN_ID"}, {"authorityHost", "AZURE_AUTHORITY_HOST"}},
}

// commonFields are taken by every type.
var commonFields = [][2]string{{"certificate", "PLUGIN_REGISTRY_CERTIFICATE"}}

// stepConnector is the connector type each step type needs.
var stepConnector = map[string]string{
	"BuildAndPushDockerRegistry": "docker", "BuildAndPushECR": "aws", "BuildAndPushGAR": "gcp", "BuildAndPushGCR": "gcp", "BuildAndPushACR": "azure",
}

// secretFields are masked wherever they are printed.
var secretFields = map[string]bool{"password": true, "secretKey": true, "oidcToken": true, "jsonKey": true, "accessToken": true, "clientSecret": true, "clientCertificate": true}

// ReadConnectors reads and checks a connectors file; every problem is
// reported at once, with its line and column.
func ReadConnectors(path string) (*Connectors, error) {
	b, err := readPipeline(path)
	if err != nil {
		return nil, fmt.Errorf("connectors file: %w", err)
	}
	probs := &Problems{File: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		probs.addAt(Pos{1, 1}, "", "YAML: %v", err)
		return nil, probs
	}
	if anchors(probs, &doc); len(probs.Items) > 0 {
		return nil, probs
	}
	c := &Connectors{File: path, byName: map[string]*Connector{}}
	ps := &parser{probs: probs, ignored: map[string]bool{}}
	if len(doc.Content) == 0 {
		probs.addAt(Pos{1, 1}, "start the file with connectors:", "the file is empty")
		return nil, probs
	}
	top := ps.fields(doc.Content[0], "", []string{"connectors"})
	cn := top["connectors"]
	if cn == nil || cn.Kind != yaml.MappingNode {
		probs.add(doc.Content[0], "connectors: {NAME: {type: docker|aws|gcp|azure, ...}}", "no connectors: mapping at the top of the file")
		return nil, probs
	}
	for i := 0; i+1 < len(cn.Content); i += 2 {
		k, v := cn.Content[i], cn.Content[i+1]
		path := "connectors." + k.Value
		t := ""
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "type" {
					t = v.Content[j+1].Value
				}
			}
		}
		fields, ok := connectorTypes[t]
		if !ok {
			probs.add(v, "", "%s.type %q: want docker, aws, gcp or azure", path, t)
			continue
		}
		known := []string{"type", "env"}
		for _, f := range append(fields, commonFields...) {
			known = append(known, f[0])
		}
		f := ps.fields(v, path, known)
		for name := range ps.ignored {
			probs.addAt(posOf(v), "", "%s is not a field of a %s connector (it takes %s)", name, t, strings.Join(known, ", "))
		}
		ps.ignored = map[string]bool{}
		conn := &Connector{Name: k.Value, Type: t, Pos: posOf(k), fields: f}
		if e := f["env"]; e != nil {
			if e.Kind != yaml.MappingNode {
				probs.add(e, "", "%s.env: want a mapping of variable names to values", path)
			} else {
				conn.env = e.Content
			}
		}
		for name, n := range f {
			if secretFields[name] && n.Kind == yaml.ScalarNode && n.Value != "" && !strings.Contains(n.Value, "<+secrets.getValue(") {
				probs.add(n, fmt.Sprintf("write %s: <+secrets.getValue(\"%s_%s\")> and put the value in the secrets file", name, k.Value, name),
					"%s.%s is a secret written in the file", path, name)
			}
		}
		if _, dup := c.byName[k.Value]; dup {
			probs.add(k, "", "connector %s is defined twice", k.Value)
		}
		c.byName[k.Value] = conn
	}
	if len(probs.Items) > 0 {
		probs.sort()
		return nil, probs
	}
	return c, nil
}

// stepEnv is what a runner sends a Build and Push step for its connector
// (and its first base image connector): the credentials, as variables.
func (c *Connectors) stepEnv(ref, stepType, baseRef string, sc *Scope) ([]kv, error) {
	conn, ok := c.byName[ref]
	if !ok {
		return nil, fmt.Errorf("connector %q is not in the connectors file %s", ref, c.File)
	}
	if want := stepConnector[stepType]; conn.Type != want {
		return nil, fmt.Errorf("a %s step needs a %s connector; %s is a %s connector", stepType, want, ref, conn.Type)
	}
	out, err := conn.vars(sc, nil)
	if err != nil || baseRef == "" {
		return out, err
	}
	base, ok := c.byName[baseRef]
	if !ok {
		return nil, fmt.Errorf("base image connector %q is not in the connectors file %s", baseRef, c.File)
	}
	if base.Type != "docker" {
		return nil, fmt.Errorf("base image connector %s is a %s connector; base images are pulled with a docker connector", baseRef, base.Type)
	}
	more, err := base.vars(sc, map[string]string{"url": "PLUGIN_BASE_IMAGE_REGISTRY", "username": "PLUGIN_BASE_IMAGE_USERNAME", "password": "PLUGIN_BASE_IMAGE_PASSWORD"})
	return append(out, more...), err
}

// vars resolves the connector's fields into variables (rename, when
// given, picks and renames them).
func (conn *Connector) vars(sc *Scope, rename map[string]string) ([]kv, error) {
	var out []kv
	for _, f := range append(connectorTypes[conn.Type], commonFields...) {
		n := conn.fields[f[0]]
		if n == nil {
			continue
		}
		name := f[1]
		if rename != nil {
			if name = rename[f[0]]; name == "" {
				continue
			}
		}
		v, err := sc.Expand(n.Value)
		if err != nil {
			return nil, fmt.Errorf("connector %s.%s: %w", conn.Name, f[0], err)
		}
		if f[0] == "url" {
			v = registryOfURL(v)
		}
		out = append(out, kv{name, v, posOf(n)})
	}
	if rename != nil {
		return out, nil
	}
	for i := 0; i+1 < len(conn.env); i += 2 {
		v, err := sc.Expand(conn.env[i+1].Value)
		if err != nil {
			return nil, fmt.Errorf("connector %s.env.%s: %w", conn.Name, conn.env[i].Value, err)
		}
		out = append(out, kv{conn.env[i].Value, v, posOf(conn.env[i+1])})
	}
	return out, nil
}

// registryOfURL is a docker connector's URL as the runner passes it:
// Docker Hub's v1 and v2 URLs are Docker Hub; any other loses its scheme.
func registryOfURL(u string) string {
	switch strings.TrimSuffix(u, "/") {
	case "https://index.docker.io/v1", "https://index.docker.io/v2", "https://registry.hub.docker.com", "docker.io":
		return "https://index.docker.io/v1/"
	}
	return u
}
