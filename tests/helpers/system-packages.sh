#!/usr/bin/env bash
# The system packages the test suite needs, installed with apt where missing: a single-node SLURM
# (the workflow's SLURM test) and libarchive (RAR extraction of UCF101).
set -euo pipefail
missing=()
command -v slurmctld > /dev/null || [[ -x /usr/sbin/slurmctld ]] || missing+=(slurm-wlm)
command -v munged > /dev/null || [[ -x /usr/sbin/munged ]] || missing+=(munge)
/sbin/ldconfig -p | grep -q 'libarchive\.so\.13' || missing+=(libarchive13)
((${#missing[@]})) || exit 0
echo "installing ${missing[*]} (apt)"
sudo=$( ((EUID == 0)) || echo sudo)
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
