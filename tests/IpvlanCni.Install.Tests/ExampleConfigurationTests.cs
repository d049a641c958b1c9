using IpvlanCni.Cni;

namespace IpvlanCni.Install.Tests;

/// <summary>The example conflists shipped in the package parse with the plugin's own parser, as install checks them.</summary>
public class ExampleConfigurationTests
{
    public static TheoryData<string> Examples() =>
        [.. Directory.GetFiles(Path.Join(Repo.Root, "deploy", "examples"), "*.conflist").Select(f => Path.GetFileName(f)).Order()];

    [Fact]
    public void There_are_examples()
    {
        Assert.True(Examples().Count >= 4);
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_passes_the_configuration_check(string name)
    {
        var content = File.ReadAllBytes(Path.Join(Repo.Root, "deploy", "examples", name));

        NetworkConfigCheck.CheckConflist(content);
    }

    [Fact]
    public void The_check_can_fail()
    {
        var e = Assert.Throws<CniException>(() => NetworkConfigCheck.CheckConflist(
            """{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"ipvlan-cni","hostAccess":{},"flag":"private"}]}"""u8.ToArray()));
        // A known key whose value this combination cannot honour: the spec's "unsupported field".
        Assert.Equal(CniErrorCode.UnsupportedField, e.Code);
        Assert.StartsWith("plugins[0]: flag: ", e.Message);
    }
}
