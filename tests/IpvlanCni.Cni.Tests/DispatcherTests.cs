using System.Text;
using System.Text.Json;
using IpvlanCni.Network;

namespace IpvlanCni.Cni.Tests;

public class DispatcherTests
{
    static readonly string[] Versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
    static readonly string[] Commands = ["ADD", "DEL", "CHECK", "STATUS", "GC"];

    public static TheoryData<string, string> Matrix()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in Commands)
            foreach (var v in Versions.Append("0.2.0").Append("0.1.0").Append("2.0.0"))
                data.Add(c, v);
        return data;
    }

    // CHECK exists from 0.4.0 on, STATUS and GC from 1.1.0; everything needs a version we speak.
    static bool Accepts(string command, string version) =>
        CniVersions.IsSupported(version) && command switch
        {
            "CHECK" => CniVersions.AtLeast(version, "0.4.0"),
            "STATUS" or "GC" => CniVersions.AtLeast(version, "1.1.0"),
            _ => true,
        };

    [Theory, MemberData(nameof(Matrix))]
    public void EveryCommandAtEveryVersion(string command, string version)
    {
        var plugin = new FakePlugin { Result = Cni.FullResult() };
        var outcome = Cni.Run(command, Cni.Config(version), plugin);
        if (Accepts(command, version))
        {
            Assert.Equal(0, outcome.ExitCode);
            var request = Assert.Single(plugin.Requests);
            Assert.Equal(version, request.Config.CniVersion);
            Assert.Equal("net1", request.Config.Name);
            Assert.Equal("ipvlan", request.Config.Type);
            if (command == "ADD")
                Assert.Equal(CniResultJson.WriteString(Cni.FullResult(), version), outcome.Stdout);
            else
                Assert.Equal("", outcome.Stdout);
        }
        else
        {
            Assert.Equal(1, outcome.ExitCode);
            Assert.Empty(plugin.Requests);
            Assert.Equal(CniErrorCode.IncompatibleVersion, outcome.ErrorCode);
            // The error speaks the request's version when we know it, else the latest.
            Assert.Equal(CniVersions.IsSupported(version) ? version : "1.1.0", outcome.Json.GetProperty("cniVersion").GetString());
        }
    }

    [Fact]
    public void AddPassesTheWholeRequest()
    {
        var plugin = new FakePlugin();
        var env = Cni.Env("ADD");
        env["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web-0";
        string config = Cni.Config("1.0.0", ""","master":"eth1","mode":"l3" """);
        Assert.Equal(0, Cni.Run(env, config, plugin).ExitCode);
        var r = Assert.Single(plugin.Requests);
        Assert.Equal(CniCommand.Add, r.Command);
        Assert.Equal(("c0ffee", "/var/run/netns/test", "eth0"), (r.ContainerId, r.NetnsPath, r.IfName));
        Assert.Equal(["/opt/cni/bin", "/usr/lib/cni"], r.PluginPaths);
        Assert.Equal([new("IgnoreUnknown", "1"), new KeyValuePair<string, string>("K8S_POD_NAME", "web-0")], r.Args);
        Assert.Equal(config, Encoding.UTF8.GetString(r.ConfigBytes));
        Assert.Same(env, r.Environment);
        Assert.Null(r.Config.PrevResult);
    }

    [Fact]
    public void DelAllowsAnEmptyNetns()
    {
        var env = Cni.Env("DEL");
        env.Remove("CNI_NETNS");
        var plugin = new FakePlugin();
        Assert.Equal(0, Cni.Run(env, Cni.Config(), plugin).ExitCode);
        Assert.Equal("", plugin.Requests[0].NetnsPath);
    }

    [Fact]
    public void StatusAndGcNeedNoAttachmentVariables()
    {
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "STATUS" };
        Assert.Equal(0, Cni.Run(env, Cni.Config()).ExitCode);
        env["CNI_COMMAND"] = "GC";
        Assert.Equal(0, Cni.Run(env, Cni.Config()).ExitCode);
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID")]
    [InlineData("ADD", "CNI_NETNS")]
    [InlineData("ADD", "CNI_IFNAME")]
    [InlineData("CHECK", "CNI_CONTAINERID")]
    [InlineData("CHECK", "CNI_NETNS")]
    [InlineData("CHECK", "CNI_IFNAME")]
    [InlineData("DEL", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_IFNAME")]
    public void MissingVariableNamesItself(string command, string variable)
    {
        foreach (bool empty in new[] { false, true })
        {
            var env = Cni.Env(command);
            if (empty) env[variable] = ""; else env.Remove(variable);
            AssertRefusedNaming(env, variable);
        }
    }

    /// <summary>Exit 1 with an environment error that names the variable, and the plugin never called.</summary>
    static void AssertRefusedNaming(Dictionary<string, string> env, string variable)
    {
        var plugin = new FakePlugin();
        var outcome = Cni.Run(env, Cni.Config(), plugin);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal(CniErrorCode.InvalidEnvironment, outcome.ErrorCode);
        Assert.Contains(variable, outcome.Message);
        Assert.Empty(plugin.Requests);
    }

    [Fact]
    public void AllMissingVariablesAreNamedAtOnce()
    {
        var outcome = Cni.Run(new Dictionary<string, string> { ["CNI_COMMAND"] = "ADD" }, Cni.Config());
        Assert.Equal(CniErrorCode.InvalidEnvironment, outcome.ErrorCode);
        Assert.Contains("CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME", outcome.Message);
    }

    [Theory]
    [InlineData("CNI_COMMAND", "")]
    [InlineData("CNI_COMMAND", "add")]
    [InlineData("CNI_COMMAND", "DELETE")]
    [InlineData("CNI_CONTAINERID", "-leading-dash")]
    [InlineData("CNI_CONTAINERID", "has space")]
    [InlineData("CNI_CONTAINERID", "slash/inside")]
    [InlineData("CNI_IFNAME", "this-is-16-bytes")]
    [InlineData("CNI_IFNAME", "eth/0")]
    [InlineData("CNI_IFNAME", "..")]
    [InlineData("CNI_NETNS", "/proc/1/ns/net\0")]
    [InlineData("CNI_ARGS", "K8S_POD_NAME")]
    [InlineData("CNI_ARGS", "=value")]
    public void InvalidVariableNamesItself(string variable, string value)
    {
        var env = Cni.Env("ADD");
        env[variable] = value;
        AssertRefusedNaming(env, variable);
    }

    [Theory]
    [InlineData("CNI_CONTAINERID", 300)]
    [InlineData("CNI_NETNS", 5000)]
    [InlineData("CNI_ARGS", 70_000)]
    [InlineData("CNI_PATH", 70_000)]
    public void OversizeVariablesAreRejected(string variable, int length)
    {
        var env = Cni.Env("ADD");
        env[variable] = variable == "CNI_ARGS" ? "K=" + new string('v', length) : "/" + new string('a', length);
        if (variable == "CNI_CONTAINERID") env[variable] = new string('a', length);
        var outcome = Cni.Run(env, Cni.Config());
        Assert.Equal(CniErrorCode.InvalidEnvironment, outcome.ErrorCode);
        Assert.Contains(variable, outcome.Message);
        Assert.True(outcome.Stdout.Length < 2000, "the value is not echoed whole");
    }

    [Theory]
    [InlineData("", 6)]
    [InlineData("   \n", 6)]
    [InlineData("{", 6)]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1",""", 6)]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1"} trailing""", 6)]
    [InlineData("""{"cniVersion":"1.0.0",/*c*/"name":"net1"}""", 6)]
    [InlineData("[]", 6)]
    [InlineData("\"text\"", 6)]
    public void BrokenJsonIsADecodeFailure(string stdin, int code)
    {
        var plugin = new FakePlugin();
        var outcome = Cni.Run("ADD", stdin, plugin);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal(code, outcome.ErrorCode);
        Assert.Empty(plugin.Requests);
    }

    [Fact]
    public void BrokenJsonSaysWhere()
    {
        var outcome = Cni.Run("ADD", "{\"cniVersion\":\"1.0.0\",\n\"name\": }");
        Assert.Equal(CniErrorCode.DecodeFailure, outcome.ErrorCode);
        Assert.Contains("line 2", outcome.Message);
        Assert.Contains("byte 9", outcome.Message);
    }

    [Theory]
    [InlineData("""{"cniVersion":1.0,"name":"net1"}""", 6, "cniVersion")]
    [InlineData("""{"cniVersion":"1.0.0","name":7}""", 6, "name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1","type":["ipvlan"]}""", 6, "type")]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1","prevResult":"x"}""", 6, "prevResult")]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1","prevResult":{"ips":[{"address":"bad"}]}}""", 6, "prevResult.ips[0].address")]
    [InlineData("""{"cniVersion":"1.0.0","type":"ipvlan"}""", 7, "name")]
    [InlineData("""{"cniVersion":"1.0.0","name":""}""", 7, "name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"../etc"}""", 7, "name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"my net"}""", 7, "name")]
    [InlineData("""{"name":"net1"}""", 1, "cniVersion")]
    [InlineData("""{"cniVersion":"0.2.0","name":"net1"}""", 1, "0.2.0")]
    public void ConfigProblemsNameTheField(string stdin, int code, string field)
    {
        var outcome = Cni.Run("ADD", stdin);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal(code, outcome.ErrorCode);
        Assert.Contains(field, outcome.Message);
    }

    [Fact]
    public void HugeStdinIsRejectedWithoutParsing()
    {
        var big = new byte[CniDispatcher.MaxStdinBytes + 1];
        Array.Fill(big, (byte)' ');
        var outcome = Cni.Run(Cni.Env("ADD"), big);
        Assert.Equal(CniErrorCode.DecodeFailure, outcome.ErrorCode);
        Assert.Contains("larger than", outcome.Message);
    }

    [Fact]
    public void StdinOfExactlyTheLimitIsRead()
    {
        string config = Cni.Config();
        var bytes = new byte[CniDispatcher.MaxStdinBytes];
        Array.Fill(bytes, (byte)' ');
        Encoding.UTF8.GetBytes(config).CopyTo(bytes, 0);
        Assert.Equal(0, Cni.Run(Cni.Env("DEL"), bytes).ExitCode);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void PrevResultOfEachVersionParses(string version)
    {
        string prev = Encoding.UTF8.GetString(CniResultJson.Write(Cni.FullResult(), version));
        var plugin = new FakePlugin();
        Assert.Equal(0, Cni.Run("ADD", Cni.Config(version, $",\"prevResult\":{prev}"), plugin).ExitCode);
        var parsed = plugin.Requests[0].Config.PrevResult!;
        Assert.Equal(2, parsed.Ips.Count);
        Assert.Equal(IpPrefix.Parse("fd00::5/64"), parsed.Ips[1].Address);
        Assert.Equal(1, parsed.Ips[1].Interface);
        Assert.Equal(CniResultJson.WriteString(Cni.FullResult(), version), CniResultJson.WriteString(parsed, version));
    }

    [Fact]
    public void PrevResultWithoutVersionTakesTheConfigs()
    {
        var plugin = new FakePlugin();
        string config = Cni.Config("0.3.1", ""","prevResult":{"ips":[{"version":"4","address":"10.0.0.2/24"}],"dns":{}}""");
        Assert.Equal(0, Cni.Run("ADD", config, plugin).ExitCode);
        Assert.Equal("0.3.1", plugin.Requests[0].Config.PrevResult!.CniVersion);
    }

    [Fact]
    public void AddWritesThePluginResultInTheRequestVersion()
    {
        var plugin = new FakePlugin { Result = Cni.FullResult() with { CniVersion = "1.1.0" } };
        var outcome = Cni.Run("ADD", Cni.Config("0.4.0"), plugin);
        Assert.Equal("0.4.0", outcome.Json.GetProperty("cniVersion").GetString());
        Assert.Equal("4", outcome.Json.GetProperty("ips")[0].GetProperty("version").GetString());
    }

    [Theory]
    [InlineData("""{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}""", "cni.dev/valid-attachments")]
    [InlineData("""{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}""", "cni.dev/attachments")]
    public void GcReadsAttachmentsUnderEitherKey(string items, string key)
    {
        var plugin = new FakePlugin();
        Assert.Equal(0, Cni.Run("GC", Cni.Config("1.1.0", $",\"{key}\":[{items}]"), plugin).ExitCode);
        Assert.Equal([new GcAttachment("c1", "eth0"), new GcAttachment("c2", "net1")], plugin.Requests[0].Config.ValidAttachments!);
    }

    [Fact]
    public void GcPrefersTheCurrentKey()
    {
        var plugin = new FakePlugin();
        string extra = ""","cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}],"cni.dev/valid-attachments":[]""";
        Assert.Equal(0, Cni.Run("GC", Cni.Config("1.1.0", extra), plugin).ExitCode);
        Assert.Empty(plugin.Requests[0].Config.ValidAttachments!);
    }

    [Fact]
    public void GcWithoutAttachmentsSaysSo()
    {
        var plugin = new FakePlugin();
        Assert.Equal(0, Cni.Run("GC", Cni.Config("1.1.0"), plugin).ExitCode);
        Assert.Null(plugin.Requests[0].Config.ValidAttachments);
    }

    [Theory]
    [InlineData("""{}""", 6, "cni.dev/valid-attachments")]
    [InlineData("""[{"containerID":"c1"}]""", 7, "cni.dev/valid-attachments[0].ifname")]
    [InlineData("""[{"containerID":1,"ifname":"eth0"}]""", 6, "cni.dev/valid-attachments[0].containerID")]
    [InlineData("""["c1"]""", 6, "cni.dev/valid-attachments[0]")]
    public void BadAttachmentsNameThePath(string list, int code, string path)
    {
        var outcome = Cni.Run("GC", Cni.Config("1.1.0", $",\"cni.dev/valid-attachments\":{list}"));
        Assert.Equal(code, outcome.ErrorCode);
        Assert.Contains(path, outcome.Message);
    }

    [Fact]
    public void PluginCniExceptionBecomesTheErrorObject()
    {
        var plugin = new FakePlugin { Throw = new CniException(CniErrorCode.AddressesExhausted, "no free address in 10.0.0.0/30", "range 1") };
        var outcome = Cni.Run("ADD", Cni.Config("0.4.0"), plugin);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal("""
            {
                "cniVersion": "0.4.0",
                "code": 101,
                "msg": "no free address in 10.0.0.0/30",
                "details": "range 1"
            }
            """, outcome.Stdout);
    }

    [Fact]
    public void OtherExceptionsAreInternalErrors()
    {
        var plugin = new FakePlugin { Throw = new InvalidOperationException("boom") };
        var outcome = Cni.Run("DEL", Cni.Config(), plugin);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal(CniErrorCode.Internal, outcome.ErrorCode);
        Assert.Equal("internal error (InvalidOperationException): boom", outcome.Message);
    }

    /// <summary>The published binary has resource keys for messages: they never reach the error JSON bare.</summary>
    [Theory]
    [InlineData("IO_PathNotFound_Path, /x", 5)]
    [InlineData("IO_FileExists_Name", 5)]
    [InlineData("Arg_OutOfMemoryException", 999)]
    public void Unclassified_exceptions_are_put_in_words_never_as_resource_keys(string key, int code)
    {
        Exception thrown = code == 5 ? new IOException(key) : new OutOfMemoryException(key);
        var outcome = Cni.Run("DEL", Cni.Config(), new FakePlugin { Throw = thrown });
        Assert.Equal(code, outcome.ErrorCode);
        Assert.DoesNotContain("_", outcome.Message);
    }

    [Fact]
    public void AddWithoutResultIsInternal()
    {
        var outcome = Cni.Run("ADD", Cni.Config(), new FakePlugin { Result = null });
        Assert.Equal(CniErrorCode.Internal, outcome.ErrorCode);
    }

    [Fact]
    public void UnknownCommandErrorUsesTheLatestVersion()
    {
        var outcome = Cni.Run("FROB", Cni.Config("0.3.1"));
        Assert.Equal(CniErrorCode.InvalidEnvironment, outcome.ErrorCode);
        Assert.Contains("CNI_COMMAND", outcome.Message);
        Assert.Equal("1.1.0", outcome.Json.GetProperty("cniVersion").GetString());
    }

    [Theory]
    [InlineData("", "1.1.0")]
    [InlineData("""{"cniVersion":"0.4.0"}""", "0.4.0")]
    [InlineData("""{"cniVersion":"1.0.0","name":"net1","type":"ipvlan"}""", "1.0.0")]
    [InlineData("""{"cniVersion":"9.9.9"}""", "1.1.0")]
    [InlineData("not json", "1.1.0")]
    public void VersionListsWhatWeSpeak(string stdin, string echoed)
    {
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" };
        var outcome = Cni.Run(env, stdin);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal($$"""{"cniVersion":"{{echoed}}","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""" + "\n", outcome.Stdout);
    }

    [Fact]
    public void ParseRequestIsUsableOnItsOwn()
    {
        var request = CniDispatcher.ParseRequest(CniCommand.Check, Cni.Env("CHECK"), new MemoryStream(Encoding.UTF8.GetBytes(Cni.Config("0.4.0"))));
        Assert.Equal(CniCommand.Check, request.Command);
        Assert.Equal("0.4.0", request.Config.CniVersion);
    }

    [Fact]
    public void StdoutFailureStillReturnsNonZero()
    {
        var env = Cni.Env("ADD");
        int exit = CniDispatcher.Run(new FakePlugin(), env, new MemoryStream(Encoding.UTF8.GetBytes(Cni.Config())), new FailingStream());
        Assert.Equal(1, exit);
    }

    sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("EPIPE");
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("EPIPE");
    }
}
