using System.ComponentModel.DataAnnotations;

namespace MoEMesh.Settings;

/// <summary>
/// A rule for one kind of setting value (a time limit, a count, a size in bytes, an address, ...). Each
/// kind has one rule, written once (here, or beside the parser of its kind in the project that owns it),
/// so every options class states and checks its limits the same way. An empty optional value (null) is
/// fine; a list is checked entry by entry.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public abstract class SettingRuleAttribute : ValidationAttribute
{
    /// <summary>What is wrong with <paramref name="value"/>, as "must ...; got ...", or null when it is fine.</summary>
    public string? ProblemWith(object? value) => value is null ? null : Problem(value);

    /// <summary>What is wrong with a value that is present, or null when it is fine.</summary>
    protected abstract string? Problem(object value);

    /// <summary>The message of the <see cref="FormatException"/> <paramref name="parse"/> throws, or null when it parses: for kinds whose parser says what is wrong.</summary>
    protected static string? ParseProblem(Action parse)
    {
        try
        {
            parse();
            return null;
        }
        catch (FormatException e)
        {
            return e.Message.TrimEnd('.');
        }
    }

    /// <inheritdoc />
    protected sealed override ValidationResult? IsValid(object? value, ValidationContext context) =>
        ProblemWith(value) is { } problem ? new ValidationResult(problem, context?.MemberName is { } member ? [member] : []) : ValidationResult.Success;
}
