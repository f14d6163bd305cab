#include "dockerfile/instructions.h"

#include <doctest/doctest.h>

#include <string>

namespace slipway::dockerfile {
namespace {

// Parses `text` (which must hold one instruction after a FROM) and returns the second one.
Result<Instruction> Second(const std::string& text, char escape = '\\') {
  auto parsed = Parse("FROM base\n" + text, "Dockerfile");
  if (!parsed.ok()) return std::move(parsed).error();
  REQUIRE(parsed->nodes.size() >= 2);
  return ParseInstruction(parsed->nodes[1], escape);
}

Instruction Must(const std::string& text) {
  auto r = Second(text);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

std::string Fails(const std::string& text) {
  auto r = Second(text);
  REQUIRE_FALSE(r.ok());
  return r.error().ToString();
}

using Strings = std::vector<std::string>;

TEST_CASE("instructions: exec form vs shell form exactly as BuildKit (17-21)") {
  Instruction exec = Must("RUN [\"echo\", \"a b\"]");
  CHECK(exec.command.exec_form);
  CHECK(exec.command.exec == Strings{"echo", "a b"});
  Instruction shell = Must("RUN echo [\"x\"]");
  CHECK_FALSE(shell.command.exec_form);
  CHECK(shell.command.shell == "echo [\"x\"]");
  // Invalid JSON silently falls back to shell form.
  CHECK_FALSE(Must("CMD ['single', 'quotes']").command.exec_form);
  CHECK_FALSE(Must("CMD [\"unterminated\"").command.exec_form);
  CHECK(Must("CMD [\"unterminated\"").command.shell == "[\"unterminated\"");
  // A JSON array with non-strings is a hard error.
  CHECK(Fails("ENTRYPOINT [\"a\", 1]") ==
        "Dockerfile:2:1: arrays must be comprised of strings only");
  CHECK(Must("CMD []").command.exec_form);
  // Backslashes in exec form are JSON escapes.
  CHECK(Must("CMD [\"c:\\\\windows\"]").command.exec == Strings{"c:\\windows"});
  // SHELL must be JSON, non-empty.
  CHECK(Must("SHELL [\"/bin/bash\", \"-c\"]").words == Strings{"/bin/bash", "-c"});
  CHECK(Fails("SHELL /bin/bash -c") ==
        "Dockerfile:2:1: SHELL requires the arguments to be in JSON form");
  CHECK(Fails("SHELL []") == "Dockerfile:2:1: SHELL requires at least one argument");
  // COPY/ADD/VOLUME: JSON or words.
  CHECK(Must("COPY [\"a b\", \"/c d/\"]").copy.sources == Strings{"a b"});
  CHECK(Must("VOLUME /a /b").words == Strings{"/a", "/b"});
  CHECK(Must("VOLUME [\"/a\"]").words == Strings{"/a"});
}

TEST_CASE("instructions: ENV and LABEL forms (47-48)") {
  Instruction env = Must("ENV a=1 b=\"two words\" c=x\\ y");
  REQUIRE(env.pairs.size() == 3);
  CHECK(env.pairs[1].key == "b");
  CHECK(env.pairs[1].value == "\"two words\"");  // expanded (unquoted) by the plan
  Instruction legacy = Must("ENV ONE TWO= THREE=world");
  REQUIRE(legacy.pairs.size() == 1);
  CHECK(legacy.pairs[0].key == "ONE");
  CHECK(legacy.pairs[0].value == "TWO= THREE=world");
  CHECK(Fails("ENV alone") == "Dockerfile:2:1: ENV must have two arguments");
  CHECK(Fails("ENV a=1 b") ==
        "Dockerfile:2:1: Syntax error - can't find = in \"b\". Must be of the form: name=value");
  CHECK(Fails("ENV =x") == "Dockerfile:2:1: ENV names can not be blank");
  CHECK(Must("LABEL a=b \"c d\"=e").pairs[1].key == "\"c d\"");
  CHECK(Must("LABEL legacy value here").pairs[0].value == "value here");
  CHECK(Fails("LABEL") == "Dockerfile:2:1: LABEL requires at least one argument");
}

TEST_CASE("instructions: ARG (49)") {
  Instruction arg = Must("ARG a b=2 c=\"x y\"");
  REQUIRE(arg.args.size() == 3);
  CHECK_FALSE(arg.args[0].default_value.has_value());
  CHECK(arg.args[1].default_value == std::optional<std::string>("2"));
  CHECK(arg.args[2].default_value == std::optional<std::string>("\"x y\""));
  CHECK(Fails("ARG =x") == "Dockerfile:2:1: ARG names can not be blank");
  CHECK(Fails("ARG") == "Dockerfile:2:1: ARG requires at least one argument");
}

TEST_CASE("instructions: FROM forms and stage names (50)") {
  auto from = [](const std::string& t) { return Parse(t, "Dockerfile"); };
  auto first = [&](const std::string& t) {
    auto p = from(t);
    REQUIRE(p.ok());
    return ParseInstruction(p->nodes[0], '\\');
  };
  auto a = first("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Stage.1");
  REQUIRE(a.ok());
  CHECK(a->image == "golang:1.22");
  CHECK(a->platform == "$BUILDPLATFORM");
  CHECK(a->stage_name == "build-stage.1");
  CHECK(first("FROM a as b c").error().ToString() ==
        "Dockerfile:1:1: FROM requires either one or three arguments");
  CHECK(first("FROM a b").error().ToString() ==
        "Dockerfile:1:1: FROM requires either one or three arguments");
  CHECK(first("FROM a AS 1stage").error().ToString() ==
        "Dockerfile:1:1: invalid name for build stage: \"1stage\", name can't start with a "
        "number or contain symbols");
  CHECK(first("FROM a AS st@ge").error().message().find("invalid name for build stage") !=
        std::string::npos);
  CHECK(first("FROM --platform a").error().ToString() ==
        "Dockerfile:1:6: missing a value on flag: --platform");
}

TEST_CASE("instructions: ONBUILD restrictions (51)") {
  Instruction ok = Must("ONBUILD RUN echo hi");
  REQUIRE(ok.trigger);
  CHECK(ok.trigger->kind == Kind::kRun);
  CHECK(ok.value == "RUN echo hi");
  CHECK(Must("ONBUILD COPY --chown=1 a /b").trigger->copy.chown == "1");
  CHECK(Fails("ONBUILD ONBUILD RUN x") ==
        "Dockerfile:2:1: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  CHECK(Fails("ONBUILD FROM x") == "Dockerfile:2:1: FROM isn't allowed as an ONBUILD trigger");
  CHECK(Fails("ONBUILD MAINTAINER x") ==
        "Dockerfile:2:1: MAINTAINER isn't allowed as an ONBUILD trigger");
  CHECK(Fails("ONBUILD BOGUS x") == "Dockerfile:2:1: unknown instruction: BOGUS");
}

TEST_CASE("instructions: USER, WORKDIR, EXPOSE, STOPSIGNAL, MAINTAINER (54-58)") {
  CHECK(Must("USER app:staff").value == "app:staff");
  CHECK(Fails("USER a b") == "Dockerfile:2:1: USER requires exactly one argument");
  CHECK(Must("WORKDIR /a b").value == "/a b");
  CHECK(Must("EXPOSE 80 443/tcp 53/udp").words == Strings{"80", "443/tcp", "53/udp"});
  CHECK(Fails("EXPOSE") == "Dockerfile:2:1: EXPOSE requires at least one argument");
  CHECK(Must("STOPSIGNAL SIGKILL").value == "SIGKILL");
  CHECK(Must("MAINTAINER Jane <j@x>").value == "Jane <j@x>");
  CHECK(Fails("VOLUME [\"\"]") == "Dockerfile:2:1: VOLUME specified can not be an empty string");
}

TEST_CASE("instructions: HEALTHCHECK (57)") {
  Instruction h = Must(
      "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms "
      "--retries=4 CMD curl -f http://localhost/");
  CHECK_FALSE(h.health.none);
  CHECK(h.health.command.shell == "curl -f http://localhost/");
  CHECK(h.health.interval_ns == 300'000'000'000);
  CHECK(h.health.timeout_ns == 3'000'000'000);
  CHECK(h.health.start_period_ns == 90'000'000'000);
  CHECK(h.health.start_interval_ns == 500'000'000);
  CHECK(h.health.retries == 4);
  CHECK(Must("HEALTHCHECK CMD [\"/bin/check\"]").health.command.exec == Strings{"/bin/check"});
  CHECK(Must("HEALTHCHECK NONE").health.none);
  CHECK(Fails("HEALTHCHECK NONE extra") == "Dockerfile:2:1: HEALTHCHECK NONE takes no arguments");
  CHECK(Fails("HEALTHCHECK --retries=-1 CMD x") == "Dockerfile:2:13: --retries cannot be negative");
  CHECK(Fails("HEALTHCHECK --interval=10us CMD x") ==
        "Dockerfile:2:13: --interval cannot be less than 1ms");
  CHECK(Fails("HEALTHCHECK --timeout=3 CMD x").find("--timeout: invalid duration") !=
        std::string::npos);
  CHECK(Fails("HEALTHCHECK SOMETIMES x") ==
        "Dockerfile:2:1: Unknown type \"SOMETIMES\" in HEALTHCHECK (try CMD)");
  CHECK(Fails("HEALTHCHECK CMD") == "Dockerfile:2:1: Missing command after HEALTHCHECK CMD");
}

TEST_CASE("instructions: COPY and ADD flags and arguments (59-63)") {
  Instruction c = Must(
      "COPY --from=build --chown=app:staff --chmod=u=rwX,go=rX --link --parents "
      "--exclude=*.md --exclude=tmp a b /dst/");
  CHECK(c.copy.from == "build");
  CHECK(c.copy.chown == "app:staff");
  CHECK(c.copy.chmod == "u=rwX,go=rX");
  CHECK(c.copy.link);
  CHECK(c.copy.parents);
  CHECK(c.copy.excludes == Strings{"*.md", "tmp"});
  CHECK(c.copy.sources == Strings{"a", "b"});
  CHECK(c.copy.dest == "/dst/");
  Instruction a = Must(
      "ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --chmod=0755 "
      "https://x/y.tar.gz /z");
  CHECK(a.copy.checksum == "sha256:abc");
  CHECK(a.copy.keep_git_dir);
  CHECK(a.copy.unpack == std::optional<bool>(false));
  CHECK(a.copy.chmod == "0755");
  CHECK(Fails("COPY onlyone") == "Dockerfile:2:1: COPY requires at least two arguments, but got 1");
  CHECK(Fails("COPY --chmod=999 a b") ==
        "Dockerfile:2:6: invalid --chmod value \"999\": expected octal (0755) or symbolic "
        "(u=rwX,go=rX)");
  CHECK(Fails("COPY --chmod=u+q a b").find("invalid --chmod") != std::string::npos);
  CHECK(Fails("COPY --checksum=sha256:x a b") == "Dockerfile:2:6: unknown flag: --checksum");
  CHECK(Fails("ADD --from=x a b") == "Dockerfile:2:5: unknown flag: --from");
  CHECK(Fails("COPY --link=maybe a b") ==
        "Dockerfile:2:6: expecting boolean value for flag --link, not: maybe");
  CHECK(Fails("COPY --from=a --from=b x y") == "Dockerfile:2:6: duplicate flag specified: --from");
  // Heredoc sources; a heredoc destination is an error.
  Instruction h = Must("COPY <<EOF /etc/motd\nhello\nEOF");
  CHECK(h.copy.sources == Strings{"<<EOF"});
  CHECK(h.heredocs.size() == 1);
  CHECK(Fails("COPY a <<EOF\nx\nEOF") == "Dockerfile:2:1: COPY destination cannot be a heredoc");
}

TEST_CASE("instructions: RUN --mount, --network, --security (64)") {
  Instruction r = Must(
      "RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000 "
      "--mount=type=secret,id=npmrc,required "
      "--mount=type=bind,from=build,source=/out,target=/in,rw "
      "--mount=type=tmpfs,target=/t,size=1048576 "
      "--mount=type=ssh "
      "--network=none --security=sandbox make");
  REQUIRE(r.mounts.size() == 5);
  CHECK(r.mounts[0].ToString() ==
        "type=cache,target=/root/.cache,id=/root/.cache,sharing=locked,"
        "mode=0700,uid=1000,rw");
  CHECK(r.mounts[1].target == "/run/secrets/npmrc");
  CHECK(r.mounts[1].required);
  CHECK(*r.mounts[1].mode == 0400);
  CHECK(r.mounts[2].from == "build");
  CHECK_FALSE(r.mounts[2].readonly);
  CHECK(*r.mounts[3].size == 1048576);
  CHECK(r.mounts[4].id == "default");
  CHECK(r.mounts[4].target == "/run/buildkit/ssh_agent.0");
  CHECK(r.network == "none");
  CHECK(r.security == "sandbox");
  CHECK(Must("RUN --mount=target=/src make").mounts[0].readonly);  // bind: read-only by default
  CHECK(Must("RUN --mount=type=secret,id=tok,env=TOKEN x").mounts[0].target.empty());
  CHECK(Fails("RUN --mount=type=nfs,target=/x y") ==
        "Dockerfile:2:5: unsupported mount type \"nfs\"");
  CHECK(Fails("RUN --mount=type=cache y") == "Dockerfile:2:5: --mount: type=cache needs a target");
  CHECK(Fails("RUN --mount=type=cache,target=/c,sharing=maybe y") ==
        "Dockerfile:2:5: --mount: unsupported sharing value \"maybe\"");
  CHECK(Fails("RUN --mount=type=bind,target=/c,mode=0700 y") ==
        "Dockerfile:2:5: --mount: unexpected key \"mode\" for type=bind");
  CHECK(Fails("RUN --mount=type=cache,target=/c,uid=-1 y") ==
        "Dockerfile:2:5: --mount: invalid uid \"-1\"");
  CHECK(Fails("RUN --network=bridge y") ==
        "Dockerfile:2:5: unsupported network mode \"bridge\" (default, none, host)");
  CHECK(Fails("RUN --security=root y") ==
        "Dockerfile:2:5: unsupported security mode \"root\" (sandbox, insecure)");
  CHECK(Fails("RUN --frobnicate y") == "Dockerfile:2:5: unknown flag: --frobnicate");
  CHECK(Fails("RUN") == "Dockerfile:2:1: RUN requires at least one argument");
}

TEST_CASE("instructions: RUN heredoc forms (27)") {
  Instruction script = Must("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF");
  CHECK(ClassifyRunHeredoc(script).kind == RunHeredocKind::kScript);
  Instruction body = Must("RUN <<EOF\necho a\necho b\nEOF");
  RunHeredoc b = ClassifyRunHeredoc(body);
  CHECK(b.kind == RunHeredocKind::kShellBody);
  CHECK(b.text == "echo a\necho b\n");
  Instruction text = Must("RUN cat <<A >a && cat <<B >b\none\nA\ntwo\nB");
  RunHeredoc t = ClassifyRunHeredoc(text);
  CHECK(t.kind == RunHeredocKind::kShellText);
  CHECK(t.text == "cat <<A >a && cat <<B >b\none\nA\ntwo\nB");
  CHECK(ClassifyRunHeredoc(Must("RUN echo plain")).kind == RunHeredocKind::kNone);
}

TEST_CASE("instructions: unknown instructions and instructions that refuse flags or heredocs") {
  CHECK(Fails("FROBNICATE x") == "Dockerfile:2:1: unknown instruction: FROBNICATE");
  CHECK(Fails("ENV --x=1 a=b") == "Dockerfile:2:5: unknown flag: --x");
  CHECK(Fails("CMD --x=1 a") == "Dockerfile:2:5: unknown flag: --x");
}

TEST_CASE("instructions: ParseDuration") {
  CHECK(*ParseDuration("1h2m3s") == 3723'000'000'000);
  CHECK(*ParseDuration("1.5s") == 1'500'000'000);
  CHECK(*ParseDuration("0") == 0);
  CHECK_FALSE(ParseDuration("5").ok());
  CHECK_FALSE(ParseDuration("5parsecs").ok());
  CHECK_FALSE(ParseDuration("").ok());
}

}  // namespace
}  // namespace slipway::dockerfile
