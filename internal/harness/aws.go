package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS is a local stand-in for the two AWS endpoints ECR logins use: the
// ECR API (GetAuthorizationToken, DescribeRepositories, CreateRepository,
// PutLifecyclePolicy, SetRepositoryPolicy, PutImageScanningConfiguration) and STS (AssumeRole,
// AssumeRoleWithWebIdentity). It checks what AWS checks: every signed
// request's SigV4 signature is recomputed with the caller's secret and
// compared, its credential scope must name the region, a session token
// must belong to issued temporary credentials, a web identity token must
// match. No real cloud is contacted.
type AWS struct {
	URL    string // both APIs, at the root
	Region string
	// AccessKey and SecretKey are the long-term credentials it accepts.
	AccessKey, SecretKey string
	// Role, ExternalID and WebIdentityToken are what STS accepts.
	Role, ExternalID, WebIdentityToken string
	// Registry is the registry the ECR token is for (its proxy endpoint)
	// and Password the registry password the token carries (user AWS).
	Registry, Password string
	// PublicPassword is the password in ECR Public's token.
	PublicPassword string

	mu       sync.Mutex
	sessions map[string]awsSession // by temporary access key
	repos    map[string]bool
	Calls    map[string]int // by action
	Policies map[string]string
}

// StartAWS starts the stand-in; Registry and Password are set by the caller
// before any call.
func StartAWS(t testing.TB, region string) *AWS {
	t.Helper()
	a := &AWS{Region: region, AccessKey: "AKIAHOISTTEST" + strings.ToUpper(randomHex(4)), SecretKey: "secret-" + randomHex(16),
		Role: "arn:aws:iam::123456789012:role/hoist-push", ExternalID: "ext-" + randomHex(4), WebIdentityToken: "oidc." + randomHex(16),
		sessions: map[string]awsSession{}, repos: map[string]bool{}, Calls: map[string]int{}, Policies: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// CallCount is how many times an action was called, read under the lock.
func (a *AWS) CallCount(action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Calls[action]
}

// Policy is the policy text recorded for "ACTION REPOSITORY".
func (a *AWS) Policy(key string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Policies[key]
}

// AddRepository makes an ECR repository exist.
func (a *AWS) AddRepository(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.repos[name] = true
}

// HasRepository reports whether the repository exists.
func (a *AWS) HasRepository(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.repos[name]
}

func (a *AWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if target, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "SpencerFrontendService."); ok {
		a.ecrPublic(w, r, body, target)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		a.ecr(w, r, body, strings.TrimPrefix(target, "AmazonEC2ContainerRegistry_V20150921."))
		return
	}
	form, _ := url.ParseQuery(string(body))
	a.sts(w, r, body, form)
}

func jsonError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (a *AWS) ecr(w http.ResponseWriter, r *http.Request, body []byte, action string) {
	if err := a.verify(r, body, "ecr"); err != nil {
		jsonError(w, http.StatusForbidden, err.typ, err.msg)
		return
	}
	a.mu.Lock()
	a.Calls[action]++
	a.mu.Unlock()
	var in struct {
		RepositoryName      string
		RepositoryNames     []string
		LifecyclePolicyText string
		PolicyText          string
		// ImageScanningConfiguration is recorded as the policy
		// "ScanOnPush REPO": true or false.
		ImageScanningConfiguration *struct{ ScanOnPush bool }
	}
	json.Unmarshal(body, &in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch action {
	case "GetAuthorizationToken":
		token := base64.StdEncoding.EncodeToString([]byte("AWS:" + a.Password))
		json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": token, "expiresAt": float64(time.Now().Add(12 * time.Hour).Unix()), "proxyEndpoint": "https://" + a.Registry,
		}}})
	case "DescribeRepositories":
		for _, n := range in.RepositoryNames {
			if !a.HasRepository(n) {
				jsonError(w, http.StatusBadRequest, "RepositoryNotFoundException", fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '123456789012'", n))
				return
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"repositories": []map[string]string{{"repositoryName": strings.Join(in.RepositoryNames, ",")}}})
	case "CreateRepository":
		if a.HasRepository(in.RepositoryName) {
			jsonError(w, http.StatusBadRequest, "RepositoryAlreadyExistsException", "exists")
			return
		}
		a.AddRepository(in.RepositoryName)
		a.scanOnPush(in.RepositoryName, in.ImageScanningConfiguration)
		json.NewEncoder(w).Encode(map[string]any{"repository": map[string]string{"repositoryName": in.RepositoryName}})
	case "PutImageScanningConfiguration":
		if !a.HasRepository(in.RepositoryName) || in.ImageScanningConfiguration == nil {
			jsonError(w, http.StatusBadRequest, "RepositoryNotFoundException", "no such repository, or no configuration")
			return
		}
		a.scanOnPush(in.RepositoryName, in.ImageScanningConfiguration)
		json.NewEncoder(w).Encode(map[string]any{"repositoryName": in.RepositoryName, "imageScanningConfiguration": in.ImageScanningConfiguration})
	case "PutLifecyclePolicy", "SetRepositoryPolicy":
		a.mu.Lock()
		a.Policies[action+" "+in.RepositoryName] = in.LifecyclePolicyText + in.PolicyText
		a.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"repositoryName": in.RepositoryName})
	default:
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", action)
	}
}

// scanOnPush records a repository's scan-on-push as the policy
// "ScanOnPush REPO" (nothing when c is nil).
func (a *AWS) scanOnPush(repo string, c *struct{ ScanOnPush bool }) {
	if c == nil {
		return
	}
	a.mu.Lock()
	a.Policies["ScanOnPush "+repo] = fmt.Sprint(c.ScanOnPush)
	a.mu.Unlock()
}

// ecrPublic answers ECR Public's GetAuthorizationToken (its API is in
// us-east-1 only): the token of PublicPassword for user AWS.
func (a *AWS) ecrPublic(w http.ResponseWriter, r *http.Request, body []byte, action string) {
	if err := a.verifyIn(r, body, "ecr-public", "us-east-1"); err != nil {
		jsonError(w, http.StatusForbidden, err.typ, err.msg)
		return
	}
	a.mu.Lock()
	a.Calls["ecr-public:"+action]++
	a.mu.Unlock()
	if action != "GetAuthorizationToken" {
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", action)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{"authorizationData": map[string]any{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + a.PublicPassword)),
		"expiresAt":          float64(time.Now().Add(12 * time.Hour).Unix()),
	}})
}

type awsErr struct{ typ, msg string }

var credScope = regexp.MustCompile(`Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request`)

// verify recomputes the request's SigV4 signature with the secret of the
// access key it names.
func (a *AWS) verify(r *http.Request, body []byte, service string) *awsErr {
	return a.verifyIn(r, body, service, a.Region)
}

// verifyIn is verify for an API of one region (ECR Public's is us-east-1).
func (a *AWS) verifyIn(r *http.Request, body []byte, service, wantRegion string) *awsErr {
	auth := r.Header.Get("Authorization")
	m := credScope.FindStringSubmatch(auth)
	if m == nil {
		return &awsErr{"MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	key, region, svc := m[1], m[3], m[4]
	if region != wantRegion {
		return &awsErr{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", region)}
	}
	if svc != service {
		return &awsErr{"InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)}
	}
	a.mu.Lock()
	sess, temporary := a.sessions[key]
	a.mu.Unlock()
	secret, token := sess.secret, r.Header.Get("X-Amz-Security-Token")
	invalid := &awsErr{"UnrecognizedClientException", "The security token included in the request is invalid."}
	switch {
	case key == a.AccessKey:
		// Long-term keys carry no session token.
		if token != "" {
			return invalid
		}
		secret = a.SecretKey
	case !temporary:
		return invalid
	case token != sess.token:
		// A session's token is the one issued with its key.
		return invalid
	}
	signed := strings.Split(between(auth, "SignedHeaders=", ","), ";")
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return &awsErr{"IncompleteSignatureException", "bad X-Amz-Date"}
	}
	// AWS refuses a signature more than 15 minutes from its clock.
	if now := time.Now().UTC(); when.Before(now.Add(-awsSkew)) || when.After(now.Add(awsSkew)) {
		return &awsErr{"InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			when.Format("20060102T150405Z"), now.Add(-awsSkew).Format("20060102T150405Z"), now.Format("20060102T150405Z"))}
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range signed {
		if h != "host" {
			req.Header.Set(h, r.Header.Get(h))
		}
	}
	req.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), svc, region, when); err != nil {
		return &awsErr{"InternalFailure", err.Error()}
	}
	if between(req.Header.Get("Authorization"), "Signature=", "") != between(auth, "Signature=", "") {
		return &awsErr{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided."}
	}
	return nil
}

// awsSkew is how far a request's X-Amz-Date may be from the clock.
const awsSkew = 15 * time.Minute

// awsSession is a temporary credential the stand-in's STS issued.
type awsSession struct{ secret, token string }

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if to != "" {
		if j := strings.Index(s, to); j >= 0 {
			s = s[:j]
		}
	}
	return strings.TrimSpace(s)
}

func (a *AWS) sts(w http.ResponseWriter, r *http.Request, body []byte, form url.Values) {
	action := form.Get("Action")
	a.mu.Lock()
	a.Calls[action]++
	a.mu.Unlock()
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>1</RequestId></ErrorResponse>`, code, msg)
	}
	switch action {
	case "AssumeRole":
		if err := a.verify(r, body, "sts"); err != nil {
			fail(http.StatusForbidden, err.typ, err.msg)
			return
		}
		if form.Get("RoleArn") != a.Role || form.Get("ExternalId") != a.ExternalID {
			fail(http.StatusForbidden, "AccessDenied", "not authorized to perform sts:AssumeRole")
			return
		}
	case "AssumeRoleWithWebIdentity":
		if form.Get("RoleArn") != a.Role || form.Get("WebIdentityToken") != a.WebIdentityToken {
			fail(http.StatusBadRequest, "InvalidIdentityToken", "the web identity token is not valid for this role")
			return
		}
	default:
		fail(http.StatusBadRequest, "InvalidAction", action)
		return
	}
	key, secret, token := "ASIAHOIST"+strings.ToUpper(randomHex(6)), "session-secret-"+randomHex(12), "session-token-"+randomHex(12)
	a.mu.Lock()
	a.sessions[key] = awsSession{secret: secret, token: token}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey><SessionToken>%[4]s</SessionToken><Expiration>%[5]s</Expiration></Credentials><AssumedRoleUser><Arn>%[6]s/hoist</Arn><AssumedRoleId>AROAHOIST:hoist</AssumedRoleId></AssumedRoleUser></%[1]sResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, key, secret, token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), a.Role)
}
