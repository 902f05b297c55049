namespace Billing.Testing;

/// <summary>
/// The silo's runtime settings (<c>Silo/silo.env</c>, copied beside Billing.Silo.dll): the variables every launcher of a
/// silo process sets, as ./run.sh and a deployment do, so tests and benchmarks run the silo the way it is shipped.
/// </summary>
public static class SiloEnvironmentFile
{
    public const string FileName = "silo.env";

    /// <summary>The variables of the file beside <paramref name="siloDll"/>: <c>NAME=value</c> lines; blank lines and <c>#</c> comments skipped.</summary>
    public static Dictionary<string, string> Read(string siloDll)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(siloDll))!, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: the silo's build copies Silo/{FileName} beside it", path);
        var variables = new Dictionary<string, string>();
        foreach (var line in File.ReadLines(path).Select(l => l.Trim()))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var equals = line.IndexOf('=');
            if (equals < 1) throw new FormatException($"{path}: '{line}' is not NAME=value");
            variables[line[..equals]] = line[(equals + 1)..];
        }

        return variables;
    }
}
