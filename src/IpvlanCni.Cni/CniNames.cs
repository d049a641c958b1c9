using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace IpvlanCni.Cni;

/// <summary>The spec's name rules (containernetworking/cni pkg/utils), as checks that say what is wrong.</summary>
public static class CniNames
{
    /// <summary>The kernel's IFNAMSIZ (16) less the NUL.</summary>
    public const int MaxInterfaceNameBytes = 15;
    /// <summary>Network names become directory names (NAME_MAX); container IDs become file names.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ — container IDs and network names.</summary>
    public static bool IsValidIdentifier(string? value, out string problem)
    {
        problem = "";
        if (string.IsNullOrEmpty(value))
            problem = "is empty";
        else if (value.Length > MaxNameBytes)
            problem = $"is longer than {MaxNameBytes} characters";
        else if (!char.IsAsciiLetterOrDigit(value[0]))
            problem = "must start with a letter or digit";
        else if (value.AsSpan().IndexOfAnyExcept(IdentifierChars) is int bad and >= 0)
            problem = $"contains '{value[bad]}' (allowed: letters, digits, '_', '.', '-')";
        return problem.Length == 0;
    }

    /// <summary>
    /// The kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace; and no '%', which
    /// dev_get_valid_name() takes as a template ("eth%d" becomes eth0): the link would not have the name we record.
    /// </summary>
    public static bool IsValidInterfaceName(string? name, out string problem)
    {
        problem = "";
        if (string.IsNullOrEmpty(name))
            problem = "is empty";
        else if (Encoding.UTF8.GetByteCount(name) > MaxInterfaceNameBytes)
            problem = $"is longer than {MaxInterfaceNameBytes} bytes";
        else if (name is "." or "..")
            problem = $"is '{name}'";
        else if (name.AsSpan().IndexOfAny('/', ':') >= 0 || name.Any(char.IsWhiteSpace) || name.Contains('\0'))
            problem = "contains '/', ':', NUL or whitespace";
        else if (name.Contains('\uFFFD'))
            problem = "is not valid UTF-8 (the runtime's bytes were replaced; two different names would become one)";
        else if (name.Contains('%'))
            problem = "contains '%' (the kernel would take the name as a template like eth%d and pick another)";
        return problem.Length == 0;
    }

    /// <summary>The spec's error for a name that failed its rule; hostile values are cut short in the message.</summary>
    internal static CniException Invalid(string field, string? text, string problem, int code) =>
        new(code, $"{field} {problem}", text is null ? null : Truncate(text));

    /// <summary>Keeps hostile or huge values out of messages and logs.</summary>
    public static string Truncate(string value) => value.Length <= 256 ? value : string.Concat(value.AsSpan(0, 256), "...");

    static readonly System.Buffers.SearchValues<char> IdentifierChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
}

/// <summary>
/// A Linux interface name the kernel accepts (dev_valid_name): parsed once where it enters (CNI_IFNAME, master,
/// prevResult, records), so nothing downstream holds an unchecked one.
/// </summary>
[JsonConverter(typeof(CniNameJsonConverter<InterfaceName>))]
public sealed class InterfaceName : IEquatable<InterfaceName>, ICniName<InterfaceName>
{
    InterfaceName(string value) => Value = value;

    public string Value { get; }

    public static bool TryParse(string? text, [NotNullWhen(true)] out InterfaceName? name, out string problem)
    {
        name = CniNames.IsValidInterfaceName(text, out problem) ? new InterfaceName(text!) : null;
        return name is not null;
    }

    /// <summary>Parses or throws the spec's error naming <paramref name="field"/>.</summary>
    public static InterfaceName Parse(string? text, string field, int code = CniErrorCode.InvalidNetworkConfig) =>
        TryParse(text, out var name, out string problem) ? name : throw CniNames.Invalid(field, text, problem, code);

    public bool Equals(InterfaceName? other) => other is not null && other.Value == Value;
    public override bool Equals(object? obj) => obj is InterfaceName other && Equals(other);
    public override int GetHashCode() => Value.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Value;
    public static bool operator ==(InterfaceName? a, InterfaceName? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(InterfaceName? a, InterfaceName? b) => !(a == b);
    /// <summary>Reading a name as text is always safe; only Parse makes one.</summary>
    public static implicit operator string(InterfaceName name) => name.Value;
}

/// <summary>CNI_CONTAINERID: the spec's identifier rule, 1-255 characters.</summary>
[JsonConverter(typeof(CniNameJsonConverter<ContainerId>))]
public sealed class ContainerId : IEquatable<ContainerId>, ICniName<ContainerId>
{
    ContainerId(string value) => Value = value;

    public string Value { get; }

    public static bool TryParse(string? text, [NotNullWhen(true)] out ContainerId? id, out string problem)
    {
        id = CniNames.IsValidIdentifier(text, out problem) ? new ContainerId(text!) : null;
        return id is not null;
    }

    public static ContainerId Parse(string? text, string field, int code = CniErrorCode.InvalidEnvironment) =>
        TryParse(text, out var id, out string problem) ? id : throw CniNames.Invalid(field, text, problem, code);

    public bool Equals(ContainerId? other) => other is not null && other.Value == Value;
    public override bool Equals(object? obj) => obj is ContainerId other && Equals(other);
    public override int GetHashCode() => Value.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Value;
    public static bool operator ==(ContainerId? a, ContainerId? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(ContainerId? a, ContainerId? b) => !(a == b);
    public static implicit operator string(ContainerId id) => id.Value;
}

/// <summary>A network's name (the configuration's "name"): the spec's identifier rule, so it is a safe folder name.</summary>
[JsonConverter(typeof(CniNameJsonConverter<NetworkName>))]
public sealed class NetworkName : IEquatable<NetworkName>, ICniName<NetworkName>
{
    NetworkName(string value) => Value = value;

    public string Value { get; }

    public static bool TryParse(string? text, [NotNullWhen(true)] out NetworkName? name, out string problem)
    {
        name = CniNames.IsValidIdentifier(text, out problem) ? new NetworkName(text!) : null;
        return name is not null;
    }

    public static NetworkName Parse(string? text, string field, int code = CniErrorCode.InvalidNetworkConfig) =>
        TryParse(text, out var name, out string problem) ? name : throw CniNames.Invalid(field, text, problem, code);

    public bool Equals(NetworkName? other) => other is not null && other.Value == Value;
    public override bool Equals(object? obj) => obj is NetworkName other && Equals(other);
    public override int GetHashCode() => Value.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Value;
    public static bool operator ==(NetworkName? a, NetworkName? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(NetworkName? a, NetworkName? b) => !(a == b);
    public static implicit operator string(NetworkName name) => name.Value;
}

/// <summary>What the JSON converter needs of a name type.</summary>
public interface ICniName<TSelf> where TSelf : class, ICniName<TSelf>
{
    string Value { get; }
    static abstract bool TryParse(string? text, [NotNullWhen(true)] out TSelf? value, out string problem);
}

/// <summary>Names in our own records go through the same parser: a record holding an invalid one is not ours.</summary>
public sealed class CniNameJsonConverter<T> : JsonConverter<T> where T : class, ICniName<T>
{
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string problem = "is not a string";
        if (reader.TokenType == JsonTokenType.String && T.TryParse(reader.GetString(), out var value, out problem))
            return value;
        throw new JsonException($"{typeof(T).Name} {problem}");
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.Value);
}

/// <summary>CNI_ARGS: "K=V;K=V" (the reference's types.LoadArgs rules: every pair needs '=' and a key).</summary>
public static class CniArgs
{
    public static IReadOnlyList<KeyValuePair<string, string>> Parse(string? text)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        if (string.IsNullOrEmpty(text))
            return pairs;
        foreach (var part in text.Split(';'))
        {
            // Tolerate a trailing or doubled ';': it carries no pair.
            if (part.Length == 0)
                continue;
            int eq = part.IndexOf('=');
            if (eq <= 0)
                throw new CniException(CniErrorCode.InvalidEnvironment,
                    $"CNI_ARGS is invalid: '{part}' is not KEY=VALUE", "CNI_ARGS must look like \"K1=V1;K2=V2\"");
            pairs.Add(new(part[..eq], part[(eq + 1)..]));
        }
        return pairs;
    }

    /// <summary>The last value given for <paramref name="key"/> (later pairs override earlier ones), or null.</summary>
    public static string? Get(IReadOnlyList<KeyValuePair<string, string>> args, string key)
    {
        for (int i = args.Count - 1; i >= 0; i--)
            if (args[i].Key == key)
                return args[i].Value;
        return null;
    }
}
