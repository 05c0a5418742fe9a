package dev.jwsl.cli;

import dev.jwsl.protocol.ByteSize;
import picocli.CommandLine;

/** picocli's view of {@link ByteSize}: a bad size is a usage error with ByteSize's message. */
public final class SizeConverter implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
        try {
            return ByteSize.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }
}
