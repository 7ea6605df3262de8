# nazbench: `make smoke` runs the benchmark in the lab, `make test` runs every check.
# Both install what they need first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1

.PHONY: test bootstrap lint unit image molecule e2e smoke teardown

test: bootstrap lint unit image molecule e2e
	@echo "make test: all checks passed"

bootstrap:
	@scripts/bootstrap.sh

lint: bootstrap
	yamllint --strict .
	ansible-lint --offline
	ruff check .
	ruff format --check .

unit: bootstrap
	pytest tests/unit

# The lab's base image (built once with debootstrap, then cached by recipe).
image: bootstrap
	ansible-playbook playbooks/provision.yml --tags lab_install,lab_image

molecule: image
	molecule test --all

e2e: image
	pytest -v tests/e2e

# The main job: the benchmark in the lab, end to end, at smoke size (about 10 minutes):
# build the lab, deploy Redis, the mock SMSC, naz-cli and the observability stack, check
# the WAN, then experiment A with the smoke profile: the SMSC and Redis stopped on a
# seeded schedule while naz drains the queue, every message reconciled; then collect the
# run's errors and metrics and write its report (artifacts/<run_id>/report.html).
smoke: bootstrap
	ansible-playbook playbooks/provision.yml
	ansible-playbook playbooks/deploy.yml
	ansible-playbook playbooks/measure_rtt.yml -e rtt_expect_ms=154
	ansible-playbook playbooks/run_chaos.yml -e run_setup=false -e profile=smoke
	ansible-playbook playbooks/collect.yml

teardown: bootstrap
	ansible-playbook playbooks/teardown.yml
