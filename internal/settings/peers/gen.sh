#!/bin/sh
# Regenerates names.tsv, the environment names every peer reads, from the
# peers' sources: MIRRORS holds one bare git directory per peer, laid out
# as MIRRORS/OWNER+NAME/repo (git clone --bare https://github.com/OWNER/NAME
# MIRRORS/OWNER+NAME/repo), each at the commit to record (HEAD).
#
#   internal/settings/peers/gen.sh MIRRORS > internal/settings/peers/names.tsv
#
# A new peer version is a new run of this script; then give every new name a
# verdict in verdicts.tsv (TestPeerVerdicts says which are missing).
set -eu
m=${1:?usage: gen.sh MIRRORS}
x="go run ./internal/settings/peers/extract"
printf 'name\tpeer\tversion\tfile\twith\n'
{
	# cmd/drone-heroku is plugins/heroku, a deployment plugin, not a build and push step.
	$x -peer drone-plugins/drone-docker -git "$m/drone-plugins+drone-docker/repo" -skip cmd/drone-heroku/
	$x -peer drone-plugins/drone-buildx -git "$m/drone-plugins+drone-buildx/repo" -skip cmd/drone-heroku/
	# drone-plugins/drone-kaniko was drone/drone-kaniko (GitHub redirects the old name).
	$x -peer drone-plugins/drone-kaniko -git "$m/drone+drone-kaniko/repo"
	$x -peer thegeeklab/drone-docker-buildx -git "$m/thegeeklab+drone-docker-buildx/repo" \
		-lib github.com/thegeeklab/drone-plugin-lib/v2@v2.3.4
	$x -peer woodpecker-ci/plugin-docker-buildx -git "$m/woodpecker-ci+plugin-docker-buildx/repo" \
		-lib github.com/drone-plugins/drone-plugin-lib@v0.4.2
} | sort
