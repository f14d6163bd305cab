#include "dockerfile/plan.h"

#include <doctest/doctest.h>

#include <string>

#include "dockerfile/render.h"

namespace slipway::dockerfile {
namespace {

Plan MustPlan(const std::string& text, BuildOptions opts = {}) {
  auto r = PlanDockerfile(text, "Dockerfile", opts);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

std::string PlanError(const std::string& text, BuildOptions opts = {}) {
  auto r = PlanDockerfile(text, "Dockerfile", opts);
  REQUIRE_FALSE(r.ok());
  return r.error().ToString();
}

const Instruction& Ins(const Plan& p, int stage, int index) {
  REQUIRE(static_cast<std::size_t>(stage) < p.stages.size());
  REQUIRE(static_cast<std::size_t>(index) < p.stages[stage].instructions.size());
  return p.stages[stage].instructions[index];
}

bool HasWarning(const Plan& p, const std::string& rule, const std::string& text) {
  for (const Warning& w : p.warnings) {
    if (w.rule == rule && w.message.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("plan: ENV values come from the start of the instruction (36)") {
  Plan p = MustPlan("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
  CHECK(Ins(p, 0, 2).pairs[1].value == "hello");
  CHECK(Ins(p, 0, 3).pairs[0].value == "bye");
  CHECK(p.stages[0].env.at("def") == "hello");
}

TEST_CASE("plan: which instructions are expanded, and which never (37)") {
  Plan p = MustPlan(
      "FROM a\n"
      "ENV D=/data U=app P=8080 S=SIGTERM V=/vol N=x\n"
      "WORKDIR $D/w\n"
      "USER ${U}:${U}\n"
      "EXPOSE $P\n"
      "STOPSIGNAL $S\n"
      "VOLUME $V\n"
      "LABEL $N=$N\n"
      "COPY --chown=$U --chmod=0${P%8080}755 $D/src $D/dst/\n"
      "RUN --mount=type=cache,target=$D/cache echo $D\n"
      "CMD echo $D\n"
      "ENTRYPOINT [\"echo\", \"$D\"]\n"
      "ONBUILD RUN echo $D\n");
  CHECK(Ins(p, 0, 2).value == "/data/w");
  CHECK(Ins(p, 0, 3).value == "app:app");
  CHECK(Ins(p, 0, 4).words == std::vector<std::string>{"8080"});
  CHECK(Ins(p, 0, 5).value == "SIGTERM");
  CHECK(Ins(p, 0, 6).words == std::vector<std::string>{"/vol"});
  CHECK(Ins(p, 0, 7).pairs[0].key == "x");
  CHECK(Ins(p, 0, 8).copy.chown == "app");
  CHECK(Ins(p, 0, 8).copy.chmod == "0755");
  CHECK(Ins(p, 0, 8).copy.sources == std::vector<std::string>{"/data/src"});
  CHECK(Ins(p, 0, 8).copy.dest == "/data/dst/");
  CHECK(Ins(p, 0, 9).mounts[0].target == "/data/cache");
  CHECK(Ins(p, 0, 9).command.shell == "echo $D");   // the shell expands RUN
  CHECK(Ins(p, 0, 10).command.shell == "echo $D");  // and CMD
  CHECK(Ins(p, 0, 11).command.exec[1] == "$D");     // exec form: nobody expands
  CHECK(Ins(p, 0, 12).value == "RUN echo $D");      // ONBUILD: when triggered
}

TEST_CASE("plan: an unset variable expands to empty, with an UndefinedVar warning (38)") {
  Plan p = MustPlan("FROM a\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\n");
  CHECK(Ins(p, 0, 2).value == "/path/");
  CHECK(HasWarning(p, "UndefinedVar", "'$DIRNAME'"));
}

TEST_CASE("plan: global ARGs are for FROM only, until a stage redeclares them (39)") {
  Plan p = MustPlan(
      "ARG VERSION=1.2\n"
      "ARG BASE=alpine\n"
      "FROM ${BASE}:${VERSION}\n"
      "RUN echo\n"
      "ENV A=$VERSION\n"
      "ARG VERSION\n"
      "ENV B=$VERSION\n");
  CHECK(p.stages[0].base == "alpine:1.2");
  CHECK(Ins(p, 0, 2).pairs[0].value == "");
  CHECK(Ins(p, 0, 4).pairs[0].value == "1.2");
  CHECK(p.global_args.at("BASE") == "alpine");
}

TEST_CASE("plan: build args override defaults, globals and stage ARGs (39-40)") {
  BuildOptions opts;
  opts.build_args = {{"VERSION", "9.9"}, {"user", "bob"}};
  Plan p = MustPlan(
      "ARG VERSION=1.2\n"
      "FROM a:$VERSION\n"
      "USER ${user:-some_user}\n"
      "ARG user=alice\n"
      "USER $user\n"
      "ARG VERSION\n"
      "ENV V=$VERSION\n",
      opts);
  CHECK(p.stages[0].base == "a:9.9");
  CHECK(Ins(p, 0, 1).value == "some_user");  // before its declaration the ARG is not in effect
  CHECK(Ins(p, 0, 3).value == "bob");
  CHECK(p.stages[0].env.at("V") == "9.9");
}

TEST_CASE("plan: stage ARGs and ENV are inherited by FROM <stage>, not by others (41)") {
  Plan p = MustPlan(
      "FROM a AS one\n"
      "ARG X=fromone\n"
      "ENV Y=envone\n"
      "FROM one AS two\n"
      "RUN true\n"
      "LABEL x=$X y=$Y\n"
      "FROM a AS three\n"
      "LABEL x=$X y=$Y\n");
  CHECK(p.stages[1].base_stage == 0);
  CHECK(Ins(p, 1, 2).pairs[0].value == "fromone");
  CHECK(Ins(p, 1, 2).pairs[1].value == "envone");
  CHECK(Ins(p, 2, 1).pairs[0].value == "");
  CHECK(Ins(p, 2, 1).pairs[1].value == "");
}

TEST_CASE("plan: ENV overrides an ARG of the same name (42)") {
  BuildOptions opts;
  opts.build_args = {{"V", "fromarg"}};
  Plan p = MustPlan("FROM a\nARG V\nENV V=1.0\nLABEL v=$V\nENV W=${V:-default}\n", opts);
  CHECK(Ins(p, 0, 3).pairs[0].value == "1.0");
  CHECK(p.stages[0].args.at("V") == "fromarg");  // still the ARG value for RUN's environment
}

TEST_CASE("plan: proxy ARGs need no declaration; unused build args are reported (43-44)") {
  BuildOptions opts;
  opts.build_args = {{"HTTP_PROXY", "http://proxy:3128"}, {"UNUSED", "x"}, {"USED", "y"}};
  Plan p = MustPlan("FROM a\nARG USED\nLABEL p=$HTTP_PROXY\n", opts);
  CHECK(Ins(p, 0, 2).pairs[0].value == "http://proxy:3128");
  CHECK(p.stages[0].args.count("HTTP_PROXY") == 0);  // kept out of the image and history
  CHECK(HasWarning(p, "UnusedBuildArg", "[UNUSED]"));
  CHECK_FALSE(HasWarning(p, "UnusedBuildArg", "HTTP_PROXY"));
}

TEST_CASE("plan: automatic platform ARGs are global; a stage redeclares them (45)") {
  BuildOptions opts;
  opts.target_platform = "linux/arm64/v8";
  opts.build_platform = "linux/amd64";
  Plan p = MustPlan(
      "FROM --platform=$BUILDPLATFORM golang AS build\n"
      "ARG TARGETARCH\n"
      "ARG TARGETVARIANT\n"
      "ENV GOARCH=$TARGETARCH V=$TARGETVARIANT OS=$TARGETOS\n",
      opts);
  CHECK(p.stages[0].platform == "linux/amd64");
  CHECK(p.stages[0].env.at("GOARCH") == "arm64");
  CHECK(p.stages[0].env.at("V") == "v8");
  CHECK(p.stages[0].env.at("OS") == "");  // not redeclared
}

TEST_CASE("plan: SOURCE_DATE_EPOCH is a built-in build arg (46)") {
  BuildOptions opts;
  opts.build_args = {{"SOURCE_DATE_EPOCH", "1700000000"}};
  Plan p = MustPlan("FROM a\n", opts);
  CHECK(p.source_date_epoch == std::optional<long long>(1700000000));
  CHECK_FALSE(HasWarning(p, "UnusedBuildArg", "SOURCE_DATE_EPOCH"));
  opts.build_args = {{"SOURCE_DATE_EPOCH", "yesterday"}};
  CHECK(PlanError("FROM a\n", opts) ==
        "invalid SOURCE_DATE_EPOCH \"yesterday\": expected seconds since 1970 as a whole number: "
        "Invalid argument");
}

TEST_CASE("plan: stages, names, indexes, scratch, COPY --from and RUN --mount from= (7, 50, 61)") {
  Plan p = MustPlan(
      "FROM alpine AS Build\n"
      "RUN make\n"
      "FROM scratch AS out\n"
      "COPY --from=build /bin/app /app\n"
      "COPY --from=0 /etc/passwd /etc/passwd\n"
      "COPY --from=busybox:1.36 /bin/busybox /bin/\n"
      "FROM out\n"
      "RUN --mount=type=bind,from=build,target=/b true\n");
  REQUIRE(p.stages.size() == 3);
  CHECK(p.stages[0].name == "build");
  CHECK(p.stages[1].scratch);
  CHECK(p.stages[1].sources.at(1).stage == 0);
  CHECK(p.stages[1].sources.at(2).stage == 0);
  CHECK(p.stages[1].sources.at(3).image == "busybox:1.36");
  CHECK(p.stages[2].base_stage == 1);
  CHECK(p.stages[2].mount_sources.at(1)[0].stage == 0);
  CHECK(p.target == 2);
  CHECK(p.needed == std::vector<int>{0, 1, 2});
  CHECK(PlanError("FROM a AS x\nFROM b AS X\n") ==
        "Dockerfile:2:1: duplicate stage name \"x\" (first at line 1)");
  CHECK(PlanError("FROM a\nCOPY --from=1 /a /b\nFROM b\n") ==
        "Dockerfile:2:1: invalid from flag value 1: refers to current or future build stage");
  CHECK(PlanError("RUN x\nFROM a\n") ==
        "Dockerfile:1:1: RUN before the first FROM: only ARG may come before it");
  CHECK(PlanError("ARG A=1\n") ==
        "Dockerfile:1:1: the Dockerfile contains no stages to build (no FROM)");
  CHECK(PlanError("ARG B\nFROM $B\n") == "Dockerfile:2:1: base name ($B) should not be blank");
}

TEST_CASE("plan: --target picks a stage (case-insensitively) and only what it needs") {
  const std::string text =
      "FROM a AS deps\n"
      "FROM a AS unrelated\n"
      "FROM deps AS build\n"
      "FROM a AS test\n"
      "COPY --from=build /x /y\n"
      "FROM a AS final\n";
  BuildOptions opts;
  opts.target = "TEST";
  Plan p = MustPlan(text, opts);
  CHECK(p.target == 3);
  CHECK(p.needed == std::vector<int>{0, 2, 3});
  opts.target = "nope";
  CHECK(PlanError(text, opts) == "target stage \"nope\" could not be found: Invalid argument");
  CHECK(MustPlan(text).needed == std::vector<int>{4});
}

TEST_CASE("plan: EXPOSE and STOPSIGNAL are validated after expansion (55-56)") {
  Plan p = MustPlan(
      "FROM a\nENV P=\"80 81\"\nEXPOSE $P 53/UDP 8000-8010/tcp 9/sctp\nSTOPSIGNAL 9\n"
      "STOPSIGNAL SIGRTMIN+3\nSTOPSIGNAL term\n");
  CHECK(Ins(p, 0, 2).words ==
        std::vector<std::string>{"80", "81", "53/UDP", "8000-8010/tcp", "9/sctp"});
  CHECK(PlanError("FROM a\nEXPOSE 80/icmp\n") == "Dockerfile:2:1: invalid containerPort: 80/icmp");
  CHECK(PlanError("FROM a\nEXPOSE 99999\n") == "Dockerfile:2:1: invalid containerPort: 99999");
  CHECK(PlanError("FROM a\nSTOPSIGNAL SIGNOPE\n") == "Dockerfile:2:1: invalid signal: SIGNOPE");
  CHECK(PlanError("FROM a\nSTOPSIGNAL 99\n") == "Dockerfile:2:1: invalid signal: 99");
}

TEST_CASE("plan: COPY sources, destination and checksum rules (59-60)") {
  CHECK(PlanError("FROM a\nCOPY a b c\n") ==
        "Dockerfile:2:1: When using COPY with more than one source file, the destination must be "
        "a directory and end with a /");
  MustPlan("FROM a\nCOPY a b c/\n");
  MustPlan("FROM a\nCOPY nothing* a c\n");  // a wildcard may match nothing: checked later
  MustPlan("FROM a\nADD --checksum=sha256:" + std::string(64, 'a') + " https://x/y /y\n");
  CHECK(PlanError("FROM a\nADD --checksum=md5:abc https://x/y /y\n") ==
        "Dockerfile:2:1: invalid --checksum \"md5:abc\": expected sha256:<64 hex digits> or a "
        "commit id");
  Plan heredoc =
      MustPlan("FROM a\nENV W=world\nCOPY <<EOF <<'RAW' /etc/\nhello $W\nEOF\n$W\nRAW\n");
  CHECK(Ins(heredoc, 0, 2).heredocs[0].content == "hello world\n");
  CHECK(Ins(heredoc, 0, 2).heredocs[1].content == "$W\n");
}

TEST_CASE("plan: expansion errors carry the instruction's location") {
  CHECK(PlanError("FROM a\n\nWORKDIR ${x:?must be set}\n") == "Dockerfile:3:1: x: must be set");
  CHECK(PlanError("FROM a\nUSER ${}\n") == "Dockerfile:2:1: bad substitution");
  CHECK(PlanError("FROM a\nWORKDIR $nothing\n") ==
        "Dockerfile:2:1: WORKDIR expands to an empty value");
  CHECK(PlanError("FROM a\nARG M=8\nCOPY --chmod=$M$M$M a b\n") ==
        "Dockerfile:3:1: invalid --chmod value \"888\": expected octal (0755) or symbolic "
        "(u=rwX,go=rX)");
}

TEST_CASE("plan: the base image's ENV takes part in expansion when given") {
  BuildOptions opts;
  opts.image_env = [](const std::string& image) {
    return image == "golang" ? Env{{"GOPATH", "/go"}} : Env{};
  };
  Plan p = MustPlan("FROM golang\nWORKDIR $GOPATH/src\nFROM alpine\nWORKDIR /x$GOPATH\n", opts);
  CHECK(Ins(p, 0, 1).value == "/go/src");
  CHECK(Ins(p, 1, 1).value == "/x");
}

TEST_CASE("plan: each ARG instruction records the values it sets, for RUN's environment") {
  BuildOptions o;
  o.build_args = {{"B", "given"}};
  Plan p = MustPlan("ARG G=global\nFROM a\nARG A=one B=default G C\nRUN x\nARG TARGETARCH\n", o);
  const Instruction& arg = Ins(p, 0, 1);
  CHECK(arg.arg_values.at("A") == "one");
  CHECK(arg.arg_values.at("B") == "given");
  CHECK(arg.arg_values.at("G") == "global");
  CHECK(arg.arg_values.count("C") == 0);  // declared without a value: unset
  CHECK(Ins(p, 0, 3).arg_values.at("TARGETARCH") == "amd64");
}

TEST_CASE("plan: ONBUILD triggers run right after FROM, not in grandchildren (51)") {
  BuildOptions o;
  o.image_onbuild = [](const std::string& image) -> std::vector<std::string> {
    if (image == "withtriggers") return {"RUN echo one", "ENV X=$Y"};
    return {};
  };
  Plan p = MustPlan("FROM withtriggers AS a\nENV Y=2\nONBUILD RUN echo from-a\n"
                    "FROM a AS b\nFROM b\n", o);
  const Stage& a = p.stages[0];
  REQUIRE(a.instructions.size() == 5);
  CHECK(a.instructions[1].kind == Kind::kRun);
  CHECK(a.instructions[1].onbuild_of == "ONBUILD of image withtriggers");
  CHECK(a.instructions[1].at.line == 1);
  CHECK(a.instructions[2].pairs[0].value == "");  // Y is not set yet when the trigger runs
  const Stage& b = p.stages[1];
  REQUIRE(b.instructions.size() == 2);
  CHECK(b.instructions[1].command.shell == "echo from-a");
  CHECK(b.instructions[1].onbuild_of == "ONBUILD of stage a");
  CHECK(p.stages[2].instructions.size() == 1);  // b has no ONBUILD of its own

  o.image_onbuild = [](const std::string&) -> std::vector<std::string> { return {"FROM x"}; };
  CHECK(PlanError("FROM img\n", o) ==
        "Dockerfile:1:1: ONBUILD of image img: FROM is not allowed as an ONBUILD trigger");
  o.image_onbuild = [](const std::string&) -> std::vector<std::string> { return {"BOGUS x"}; };
  CHECK(PlanError("FROM img\n", o).find("Dockerfile:1:1: ONBUILD of image img: ") == 0);
}

}  // namespace
}  // namespace slipway::dockerfile
